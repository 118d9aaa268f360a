public import Hummingbird

/// The request context of the admin server: Hummingbird's core storage plus the request id that
/// every response, error body and FORENSIC_ACCESS record of the request carries.
public struct AdminRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by ``AdminMiddleware`` before any route runs: the client's valid `X-Request-ID` or a
    /// generated one.
    public var requestID: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        requestID = ""
    }
}
