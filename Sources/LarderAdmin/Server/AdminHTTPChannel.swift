import HTTPTypes
import HummingbirdCore
import Larder
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// The admin server's HTTP/1 connection: Hummingbird's `HTTP1Channel` pipeline with
/// ``AdminWireGate`` between the HTTP parser and the conversion to HTTP types.
///
/// Built by hand rather than with `configureHTTPServerPipeline` for one reason: that helper
/// pairs the response encoder with the request decoder so that any answer to CONNECT loses its
/// body and its length (the answer to a tunnel request has none). Our answer to CONNECT is a 405
/// with the contract body, so the encoder here is unpaired, and the gate drops the body of
/// answers to HEAD itself, which is the only other thing the pairing did.
struct AdminHTTPChannel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    let idleTimeout: TimeAmount
    let configuration: AdminConfiguration

    init(responder: @escaping HTTPChannelHandler.Responder, configuration: AdminConfiguration) {
        self.responder = responder
        self.configuration = configuration
        idleTimeout = .seconds(Int64(configuration.requestTimeoutSeconds))
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderFieldSize = AdminConfiguration.parserHeaderBytesMax
            limits.maxHeaderListSize = AdminConfiguration.parserHeaderBytesMax
            limits.maxHeaderFieldCount = AdminConfiguration.parserHeaderFieldsMax
            let operations = channel.pipeline.syncOperations
            try operations.addHandler(HTTPResponseEncoder(configuration: .init()))
            try operations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes,
                                                                              informationalResponseStrategy: .drop,
                                                                              limitConfiguration: limits)))
            try operations.addHandler(AdminWireGate(logger: logger))
            try operations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try operations.addHandler(HTTPConnectionStateHandler(idleTimeout: .init(idleTimeout), logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel,
                                       configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}

/// Refuses, at the HTTP/1 level and before any handler runs, what the router would never see
/// or would see too late, and answers with the error contract's body and an `X-Request-ID`:
///
/// - every method but GET and HEAD (405), CONNECT included: the body of a request is never read;
/// - a request announcing a body (`Transfer-Encoding`, or `Content-Length` other than 0): 400
///   before the request goes on, so no handler runs for a message whose framing the parser may
///   reject afterwards (a 200 followed by a parse error);
/// - an HTTP/1.1 request without `Host`, or with two (RFC 9112 §3.2): 400;
/// - everything the HTTP parser rejects (400; 405 for a method it does not know, 431 past its
///   header caps, 505 for another HTTP version).
///
/// After a refusal the connection is closed: it sends nothing more, reads and drops what the
/// client still sends (so the refusal is not lost to a reset), and closes when the client does or
/// when the connection has been idle for ``AdminConfiguration/requestTimeoutSeconds``.
///
/// It also answers HEAD without a body (the encoder here is unpaired; see ``AdminHTTPChannel``),
/// and closes the connection after answering a request that did not ask to keep it alive
/// (HTTP/1.0, `Connection: close`) or asked to switch protocols (`Upgrade`, which the server
/// ignores).
final class AdminWireGate: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// A request passed on and not yet fully answered.
    private struct Passed {
        let isHead: Bool
        let keepAlive: Bool
    }

    /// One refusal to write.
    struct Refusal {
        let error: LarderError
        let status: HTTPResponseStatus
        var headers: [(String, String)] = []
        var isHead = false
    }

    /// Requests passed on whose answer has not started, oldest first.
    private var waiting: [Passed] = []
    /// The request whose answer is being written.
    private var answering: Passed?
    /// Set once the connection is refused: nothing more is passed on or answered.
    private var refused = false
    /// A refusal waiting for the answers already under way to finish.
    private var pendingRefusal: Refusal?
    /// Set once this side has stopped writing.
    private var outputClosed = false
    /// The connection's logger: each refusal is logged at notice.
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused, !outputClosed else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if let refusal = Self.refusal(for: head) {
                refuse(context: context, refusal)
                return
            }
            // After a request asking to switch protocols the parser stops reading the connection
            // (what follows belongs to the new protocol). We switch to nothing: answer in HTTP/1.1
            // and close, rather than leave later requests unread until the idle timeout.
            let keepAlive = head.isKeepAlive && !head.headers.contains(name: "upgrade")
            waiting.append(Passed(isHead: head.method == .HEAD, keepAlive: keepAlive))
            context.fireChannelRead(data)
        case .body, .end:
            context.fireChannelRead(data)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // After a refusal the decoder keeps complaining about the bytes it is given; that is
        // expected and already answered.
        guard !refused else { return }
        if let parserError = Self.parserError(in: error) {
            refuse(context: context, Self.refusal(for: parserError))
        } else {
            context.fireErrorCaught(error)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The client closed its side after our refusal: nothing is left to do on this connection.
        if refused || outputClosed, let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head):
            let passed = waiting.isEmpty ? Passed(isHead: false, keepAlive: true) : waiting.removeFirst()
            answering = passed
            if !passed.keepAlive { head.headers.replaceOrAdd(name: "connection", value: "close") }
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .body:
            if answering?.isHead == true {
                promise?.succeed(())
            } else {
                context.write(data, promise: promise)
            }
        case .end:
            let passed = answering
            answering = nil
            if passed?.isHead == true {
                // The encoder frames a HEAD answer without a length as chunked (as GET would be);
                // its terminator is body, and must not go out.
                promise?.succeed(())
                context.flush()
            } else {
                context.write(data, promise: promise)
            }
            if passed?.keepAlive == false {
                closeOutput(context: context)
            } else if let refusal = pendingRefusal, waiting.isEmpty {
                pendingRefusal = nil
                send(refusal, context: context)
            }
        }
    }

    // MARK: - Refusing

    private func refuse(context: ChannelHandlerContext, _ refusal: Refusal) {
        refused = true
        // Answers go out in request order: a refusal waits for those already under way.
        if answering != nil || !waiting.isEmpty {
            pendingRefusal = refusal
        } else {
            send(refusal, context: context)
        }
    }

    private func send(_ refusal: Refusal, context: ChannelHandlerContext) {
        guard !outputClosed else { return }
        let requestID = AdminMiddleware.makeRequestID()
        let body = refusal.error.withRequestID(requestID).jsonBody
        logger.notice("Refused at the HTTP/1 level: \(refusal.error.message)", metadata: [
            "larder.request_id": "\(requestID)",
            "larder.admin.status": "\(refusal.status.code)",
            "larder.error_code": "\(refusal.error.code.rawValue)",
        ])
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: Responses.jsonContentType)
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: "X-Request-ID", value: requestID)
        headers.add(name: "Connection", value: "close")
        for (name, value) in refusal.headers { headers.add(name: name, value: value) }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: refusal.status, headers: headers))), promise: nil)
        if !refusal.isHead {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        context.write(wrapOutboundOut(.end(nil)), promise: nil)
        closeOutput(context: context)
    }

    /// Flushes and closes our side only: closing both at once with unread input would make the
    /// kernel reset the connection, and the client could lose the answer.
    private func closeOutput(context: ChannelHandlerContext) {
        guard !outputClosed else { return }
        outputClosed = true
        context.flush()
        context.close(mode: .output, promise: nil)
    }

    /// What the gate refuses in a request head that the parser accepted, or nil.
    static func refusal(for head: HTTPRequestHead) -> Refusal? {
        let isHead = head.method == .HEAD
        guard head.method == .GET || isHead else {
            return Refusal(error: AdminRefusal.methodNotAllowed(head.method.rawValue).error, status: .methodNotAllowed,
                           headers: [("Allow", "GET, HEAD")])
        }
        if head.headers.contains(name: "transfer-encoding") || head.headers["content-length"].contains(where: { $0 != "0" }) {
            return Refusal(error: AdminRefusal.bodyNotAccepted.error, status: .badRequest, isHead: isHead)
        }
        let hosts = head.headers["host"].count
        if hosts > 1 || (hosts == 0 && (head.version.major, head.version.minor) >= (1, 1)) {
            let message = hosts > 1 ? "The request has more than one Host field." : "An HTTP/1.1 request needs a Host field."
            return Refusal(error: LarderError(.validationFailed, message), status: .badRequest, isHead: isHead)
        }
        return nil
    }

    /// The refusal for a request the parser rejected: the contract's closest code, and the HTTP
    /// status that says what went wrong.
    static func refusal(for error: HTTPParserError) -> Refusal {
        switch error {
        case .headerOverflow:
            return Refusal(error: LarderError(.validationFailed,
                                              "The request head is larger than the parser accepts (\(AdminConfiguration.parserHeaderFieldsMax) fields or \(AdminConfiguration.parserHeaderBytesMax) bytes)."),
                           status: .requestHeaderFieldsTooLarge)
        case .invalidMethod:
            return Refusal(error: LarderError(.methodNotAllowed, "The request method is not one the server knows; it allows GET and HEAD only.",
                                              failureClass: .validation),
                           status: .methodNotAllowed, headers: [("Allow", "GET, HEAD")])
        case .invalidVersion, .paused:
            // The parser pauses on the HTTP/2 connection preface (`PRI * HTTP/2.0`); a protocol
            // switch by Upgrade or CONNECT never gets this far (405 above).
            return Refusal(error: LarderError(.validationFailed, "The admin server speaks HTTP/1.0 and HTTP/1.1 only."),
                           status: .httpVersionNotSupported)
        default:
            return Refusal(error: LarderError(.validationFailed, "The request is not valid HTTP/1.1 (\(error))."), status: .badRequest)
        }
    }

    /// The parser's error, also when the decoder reports it wrapped.
    static func parserError(in error: any Error) -> HTTPParserError? {
        if let error = error as? HTTPParserError { return error }
        if case .dataReceivedInErrorState(let inner, _) = error as? ByteToMessageDecoderError {
            return inner as? HTTPParserError
        }
        return nil
    }
}
