public import Hummingbird
import HummingbirdCore
public import Larder
import NIOCore

/// The read-only admin HTTP server over a store: health probes, metrics, and token-scoped
/// forensic reads, each of which is itself audited.
///
/// ```swift
/// let store = try Store.open(at: "/var/lib/kitchen/larder")
/// let tokens = try TokenFile.load(from: "/etc/larder/tokens.json")
/// let server = try AdminServer(store: store, tokens: tokens)   // 127.0.0.1:8089
/// try await server.run()                                       // until SIGINT or SIGTERM
/// ```
///
/// Tests drive the same application without sockets:
/// ```swift
/// try await server.makeApplication().test(.router) { client in … }
/// ```
public struct AdminServer: Sendable {
    public let store: Store
    public let configuration: AdminConfiguration
    let services: AdminServices

    /// - throws: VALIDATION_FAILED for a configuration or token file out of range.
    public init(store: Store, tokens: TokenFile, configuration: AdminConfiguration = AdminConfiguration()) throws(LarderError) {
        try self.init(store: store, tokens: tokens, configuration: configuration, verifyPass: { try $0.verify() })
    }

    /// A server whose verification pass is `verifyPass` instead of `Store.verify()`: tests hold
    /// a pass open with it to see callers share it and slots run out.
    @_spi(Testing)
    public init(store: Store, tokens: TokenFile, configuration: AdminConfiguration,
                verifyPass: @escaping @Sendable (Store) throws -> VerifyReport) throws(LarderError) {
        try configuration.validate()
        try tokens.validate()
        self.store = store
        self.configuration = configuration
        services = AdminServices(store: store, tokens: tokens, configuration: configuration, verifyPass: verifyPass)
    }

    /// Callers waiting on the verification pass now running (0 when none runs).
    @_spi(Testing)
    public var verifyCallersForTesting: Int { services.sharedVerify.callers }

    /// Budget units `tokenID` has spent in its current window.
    @_spi(Testing)
    public func budgetSpentForTesting(tokenID: String) -> Int {
        services.budget.spent(tokenID: tokenID, nowMicros: services.nowMicros)
    }

    /// The paths the server answers, in OpenAPI syntax (`/v1/audit/{seq}`).
    public static var routePaths: [String] { AdminRoutes.all.map(\.path) }

    /// A router with every route and the admin middleware. HEAD is answered for every GET route
    /// with GET's status and headers and no body (the middleware drops the body and keeps the
    /// length only when GET's body has one).
    public func buildRouter() -> Router<AdminRequestContext> {
        let router = Router(context: AdminRequestContext.self)
        // Added first so that it wraps every route and the not-found responder.
        router.add(middleware: AdminMiddleware(configuration: configuration))
        let services = self.services
        for route in AdminRoutes.all {
            router.get(RouterPath(route.path)) { request, context in
                try await services.serve(route, request: request, context: context)
            }
            router.head(RouterPath(route.path)) { request, context in
                try await services.serve(route, request: request, context: context)
            }
        }
        return router
    }

    /// The Hummingbird application: bound to ``AdminConfiguration/host`` and ``AdminConfiguration/port``,
    /// closing connections idle for ``AdminConfiguration/requestTimeoutSeconds``, with the HTTP/1
    /// gate that answers malformed requests with the error contract (see docs/THREAT-MODEL.md).
    ///
    /// - parameter onServerRunning: called with the bound port once the server listens (useful
    ///   with port 0).
    public func makeApplication(
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> Application<RouterResponder<AdminRequestContext>> {
        let configuration = self.configuration
        return Application(
            router: buildRouter(),
            server: HTTPServerBuilder { responder in AdminHTTPChannel(responder: responder, configuration: configuration) },
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port),
                                                    serverName: "larder-admin"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) }
        )
    }

    /// Serves until SIGINT or SIGTERM, then shuts down gracefully.
    public func run() async throws {
        try await makeApplication().runService()
    }
}
