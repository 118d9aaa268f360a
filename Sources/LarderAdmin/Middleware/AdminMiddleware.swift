import Foundation
import HTTPTypes
import Hummingbird
import Larder

/// Runs around every request, matched or not: assigns the request id, refuses every method but
/// GET and HEAD, enforces the URL and header caps, and renders every failure as the contract's
/// error body. Nothing past it can answer in another shape.
struct AdminMiddleware: RouterMiddleware {
    typealias Context = AdminRequestContext

    let configuration: AdminConfiguration

    static let requestIDHeader = HTTPField.Name("X-Request-ID")!

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.requestID = Self.requestID(from: request)
        var response = await respond(request, context: context, next: next)
        response.headers[Self.requestIDHeader] = context.requestID
        // Routes get HEAD from the router; errors and unknown paths do not, and a HEAD answer
        // must never carry a body.
        if request.method == .head { response = response.createHeadResponse() }
        return response
    }

    private func respond(_ request: Request, context: Context,
                         next: (Request, Context) async throws -> Response) async -> Response {
        // Before anything else: a write method must not reach a handler, whatever its path.
        guard request.method == .get || request.method == .head else {
            var response = Responses.error(
                LarderError(.methodNotAllowed,
                            "\(request.method.rawValue) is not allowed: the admin server is read-only (GET and HEAD only)."),
                requestID: context.requestID)
            response.headers[.allow] = "GET, HEAD"
            return response
        }
        let targetBytes = request.uri.description.utf8.count
        guard targetBytes <= configuration.urlBytesMax else {
            return Responses.error(
                LarderError(.validationFailed, "The request target is \(targetBytes) bytes; at most \(configuration.urlBytesMax)."),
                requestID: context.requestID, status: .uriTooLong)
        }
        let headerBytes = request.headers.reduce(0) { $0 + $1.name.rawName.utf8.count + $1.value.utf8.count + 4 }
        guard headerBytes <= configuration.headerBytesMax else {
            return Responses.error(
                LarderError(.validationFailed, "The request headers are \(headerBytes) bytes; at most \(configuration.headerBytesMax)."),
                requestID: context.requestID, status: .requestHeaderFieldsTooLarge)
        }
        do {
            return try await next(request, context)
        } catch let error as LarderError {
            return Responses.error(error, requestID: context.requestID)
        } catch let error as HTTPError where error.status == .notFound {
            return Responses.error(LarderError(.notFound, "There is no route \(request.uri.path)."), requestID: context.requestID)
        } catch let error as HTTPError {
            return Responses.error(LarderError(.validationFailed, error.body ?? "The request was refused (\(error.status.code))."),
                                   requestID: context.requestID, status: error.status)
        } catch {
            // Anything else is a bug or an unclassified failure: say so without leaking internals.
            return Responses.error(LarderError(.persistenceError, "The request failed: \(type(of: error)).",
                                               failurePoint: .read),
                                   requestID: context.requestID)
        }
    }

    /// The client's `X-Request-ID` when it is a valid Larder identifier, otherwise a new one, so
    /// that every audit record of the request carries an id the store accepts.
    static func requestID(from request: Request) -> String {
        if let given = request.headers[requestIDHeader], (try? WriteContext.validateIdentifier(given, field: "X-Request-ID")) != nil {
            return given
        }
        return "admin-\(UUID().uuidString.lowercased())"
    }
}
