public import Hummingbird

/// The request context of the admin server: Hummingbird's core storage plus the request ids that
/// every response, error body and FORENSIC_ACCESS record of the request carries.
public struct AdminRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by ``AdminMiddleware`` before any route runs: made by the server for this request
    /// alone, so that the request's audit record never lands in another request's trail.
    public var requestID: String
    /// The client's `X-Request-ID` when it is a valid identifier, kept apart from ``requestID``:
    /// recorded as `client_request_id` and echoed as `X-Client-Request-ID`.
    public var clientRequestID: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        requestID = ""
        clientRequestID = nil
    }
}
