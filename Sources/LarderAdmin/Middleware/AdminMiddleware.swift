import Foundation
import HTTPTypes
import Hummingbird
import Larder
import Logging

/// Runs around every request, matched or not: assigns the request ids, refuses every method but
/// GET and HEAD, refuses request bodies and a second Host, enforces the URL and header caps, and
/// renders every failure as the contract's error body. Nothing past it can answer in another shape.
///
/// On a live server ``AdminWireGate`` has already refused what the HTTP parser rejects and most of
/// these cases; the checks here are what an in-process (router) use of the server relies on.
struct AdminMiddleware: RouterMiddleware {
    typealias Context = AdminRequestContext

    let configuration: AdminConfiguration

    static let requestIDHeader = HTTPField.Name("X-Request-ID")!
    static let clientRequestIDHeader = HTTPField.Name("X-Client-Request-ID")!
    static let hostHeader = HTTPField.Name("Host")!

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.requestID = Self.makeRequestID()
        context.clientRequestID = Self.clientRequestID(from: request)
        context.logger[metadataKey: "larder.request_id"] = "\(context.requestID)"
        var response = await respond(request, context: context, next: next)
        response.headers[Self.requestIDHeader] = context.requestID
        if let client = context.clientRequestID { response.headers[Self.clientRequestIDHeader] = client }
        if request.method == .head { response = Self.headResponse(response) }
        return response
    }

    private func respond(_ request: Request, context: Context,
                         next: (Request, Context) async throws -> Response) async -> Response {
        do {
            try check(request)
            return try await next(request, context)
        } catch let error as AdminRefusal {
            let response = Responses.error(error.error, requestID: context.requestID, status: error.status, headers: error.headers)
            if !error.logged { Self.logRefusal(error.error, response: response, request: request, context: context) }
            return response
        } catch {
            let failure = Self.contractError(error, request: request)
            let response = Responses.error(failure.error, requestID: context.requestID, status: failure.status)
            Self.logRefusal(failure.error, response: response, request: request, context: context)
            return response
        }
    }

    /// Any error in the contract's terms, with the status HTTP says it more precisely in.
    private static func contractError(_ error: any Error, request: Request) -> (error: LarderError, status: HTTPResponse.Status?) {
        switch error {
        case let error as LarderError:
            return (error, nil)
        case let error as HTTPError where error.status == .notFound:
            return (LarderError(.notFound, "There is no route \(request.uri.path)."), nil)
        case let error as HTTPError:
            return (LarderError(.validationFailed, error.body ?? "The request was refused (\(error.status.code))."), error.status)
        default:
            // Anything else is a bug or an unclassified failure: say so without leaking internals.
            return (LarderError(.persistenceError, "The request failed: \(type(of: error)).", failurePoint: .read), nil)
        }
    }

    /// Logs a request that was not served: a refusal (401, 403, 405, 429, an oversized request)
    /// at notice, a failure of the store (5xx: the forensic record could not be written, storage
    /// unavailable) at warning, and a plain client mistake (400, 404) at debug. Never a header's
    /// value: the Authorization header holds a secret.
    static func logRefusal(_ error: LarderError, response: Response, request: Request, context: Context,
                           tokenID: String? = nil) {
        let status = response.status.code
        var metadata: Logger.Metadata = [
            "larder.admin.status": "\(status)",
            "larder.error_code": "\(error.code.rawValue)",
            "larder.admin.method": "\(request.method.rawValue)",
            "larder.admin.path": "\(request.uri.path)",
        ]
        if let tokenID { metadata["larder.admin.token_id"] = "\(tokenID)" }
        let message: Logger.Message = "Refused: \(error.message)"
        switch status {
        case 500...: context.logger.warning(message, metadata: metadata)
        case 400, 404: context.logger.debug(message, metadata: metadata)
        default: context.logger.notice(message, metadata: metadata)
        }
    }

    /// What every request must pass before routing, in this order.
    private func check(_ request: Request) throws(AdminRefusal) {
        // Before anything else: a write method must not reach a handler, whatever its path.
        guard request.method == .get || request.method == .head else {
            throw .methodNotAllowed(request.method.rawValue)
        }
        // No route reads a body; one announced but unread could be taken for the next request.
        if request.headers[.transferEncoding] != nil || request.headers[values: .contentLength].contains(where: { $0 != "0" }) {
            throw .bodyNotAccepted
        }
        // The first Host is the request's authority; a second one stays a field (RFC 9112 §3.2).
        if request.headers[Self.hostHeader] != nil {
            throw .duplicateHost
        }
        let targetBytes = request.uri.description.utf8.count
        guard targetBytes <= configuration.urlBytesMax else {
            throw AdminRefusal(LarderError(.validationFailed, "The request target is \(targetBytes) bytes; at most \(configuration.urlBytesMax)."),
                               status: .uriTooLong)
        }
        guard request.headers.count <= configuration.headerFieldsMax else {
            throw .tooManyHeaderFields(count: request.headers.count, max: configuration.headerFieldsMax)
        }
        let headerBytes = request.headers.reduce(0) { $0 + $1.name.rawName.utf8.count + $1.value.utf8.count + 4 }
        guard headerBytes <= configuration.headerBytesMax else {
            throw AdminRefusal(LarderError(.validationFailed, "The request headers are \(headerBytes) bytes; at most \(configuration.headerBytesMax)."),
                               status: .requestHeaderFieldsTooLarge)
        }
    }

    /// A new id for one request. The client's id is never used as the request's own: it would
    /// let any reader file its FORENSIC_ACCESS record into a business request's trail.
    static func makeRequestID() -> String {
        "admin-\(UUID().uuidString.lowercased())"
    }

    /// The client's `X-Request-ID` when it is a valid Larder identifier; nil otherwise, so that
    /// nothing unvalidated reaches the audit log or a response header.
    static func clientRequestID(from request: Request) -> String? {
        guard let given = request.headers[requestIDHeader],
              (try? WriteContext.validateIdentifier(given, field: "X-Request-ID")) != nil else { return nil }
        return given
    }

    /// The answer to HEAD: GET's status and headers, no body. The length is kept only when GET's
    /// body has one: a streamed GET (the export) is chunked, and `Content-Length: 0` would claim
    /// it is empty.
    static func headResponse(_ response: Response) -> Response {
        var headers = response.headers
        headers[.contentLength] = response.body.contentLength.map(String.init)
        return Response(status: response.status, headers: headers, body: ResponseBody { writer in try await writer.finish(nil) })
    }
}

/// A request refused before routing: the contract error, the HTTP status that says it more
/// precisely than the error code's own, and headers that go with it.
struct AdminRefusal: Error {
    let error: LarderError
    let status: HTTPResponse.Status?
    var headers: HTTPFields = [:]
    /// Whether it was logged where it happened (with what only that place knows, the token).
    var logged = false

    init(_ error: LarderError, status: HTTPResponse.Status? = nil, headers: HTTPFields = [:], logged: Bool = false) {
        self.error = error
        self.status = status
        self.headers = headers
        self.logged = logged
    }

    static func methodNotAllowed(_ method: String) -> AdminRefusal {
        AdminRefusal(LarderError(.methodNotAllowed, "\(method) is not allowed: the admin server is read-only (GET and HEAD only).",
                                 failureClass: .validation),
                     headers: [.allow: "GET, HEAD"])
    }

    static let bodyNotAccepted = AdminRefusal(
        LarderError(.validationFailed, "The admin server takes no request body: send no Transfer-Encoding and no Content-Length other than 0."))

    static let duplicateHost = AdminRefusal(LarderError(.validationFailed, "The request has more than one Host field."))

    static func tooManyHeaderFields(count: Int, max: Int) -> AdminRefusal {
        AdminRefusal(LarderError(.validationFailed, "The request has \(count) header fields; at most \(max)."),
                     status: .requestHeaderFieldsTooLarge)
    }
}
