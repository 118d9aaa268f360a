public import Hummingbird
import HummingbirdCore
public import Larder
public import Logging
import NIOCore
public import Prometheus

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
/// It logs through `logger` (Hummingbird's request loggers derive from it): start and stop,
/// each forensic read at info with its token id and route, each refusal at notice (a missing or
/// bad token, a scope, a method, a spent budget) or warning (the store refused to record the
/// read). Never a token's secret.
///
/// Tests drive the same application without sockets:
/// ```swift
/// try await server.makeApplication().test(.router) { client in … }
/// ```
public struct AdminServer: Sendable {
    public let store: Store
    public let configuration: AdminConfiguration
    /// Where the server logs; Hummingbird's request loggers derive from it.
    public let logger: Logger
    let services: AdminServices

    /// - parameter logger: where the server logs. Default: the store's logger
    ///   (``Store/Options/logger``), which discards everything unless the application set one.
    /// - parameter metricsRegistry: what `/metrics` renders, with the server's gauges added.
    ///   Default: the registry of the store's metrics factory when it is a
    ///   `PrometheusMetricsFactory` (see ``metricsFactory(registry:)``), else a registry of the
    ///   server's own, which then shows the gauges only.
    /// - throws: VALIDATION_FAILED for a configuration or token file out of range.
    public init(store: Store, tokens: TokenFile, configuration: AdminConfiguration = AdminConfiguration(),
                logger: Logger? = nil, metricsRegistry: PrometheusCollectorRegistry? = nil) throws(LarderError) {
        try self.init(store: store, tokens: tokens, configuration: configuration, logger: logger, metricsRegistry: metricsRegistry,
                      verifyPass: { try $0.verify() })
    }

    /// A server whose verification pass is `verifyPass` instead of `Store.verify()`: tests hold
    /// a pass open with it to see callers share it and slots run out.
    package init(store: Store, tokens: TokenFile, configuration: AdminConfiguration, logger: Logger? = nil,
                 metricsRegistry: PrometheusCollectorRegistry? = nil,
                 verifyPass: @escaping @Sendable (Store) throws -> VerifyReport) throws(LarderError) {
        try configuration.validate()
        try tokens.validate()
        self.store = store
        self.configuration = configuration
        var logger = logger ?? store.options.logger
        logger[metadataKey: "larder.store"] = "\(store.path)"
        self.logger = logger
        services = AdminServices(store: store, tokens: tokens, configuration: configuration,
                                 metrics: AdminMetrics(store: store, registry: metricsRegistry), verifyPass: verifyPass)
    }

    /// Callers waiting on the verification pass now running (0 when none runs).
    package var verifyCallersForTesting: Int { services.sharedVerify.callers }

    /// Budget units `tokenID` has spent in its current window.
    package func budgetSpentForTesting(tokenID: String) -> Int {
        services.budget.spent(tokenID: tokenID, nowMicros: services.nowMicros)
    }

    /// The paths the server answers, in OpenAPI syntax (`/v1/audit/{seq}`).
    public static var routePaths: [String] { AdminRoutes.all.map(\.path) }

    /// The patterns the router registers: ``routePaths``, with `**` for the tlog tile paths,
    /// which span several segments.
    package static var routerPaths: [String] { AdminRoutes.all.map { $0.routerPath ?? $0.path } }

    /// A router with every route and the admin middleware. HEAD is answered for every GET route
    /// with GET's status and headers and no body (the middleware drops the body and keeps the
    /// length only when GET's body has one).
    public func buildRouter() -> Router<AdminRequestContext> {
        let router = Router(context: AdminRequestContext.self)
        // Added first so that it wraps every route and the not-found responder.
        router.add(middleware: AdminMiddleware(configuration: configuration))
        let services = self.services
        for route in AdminRoutes.all {
            router.get(RouterPath(route.routerPath ?? route.path)) { request, context in
                try await services.serve(route, request: request, context: context)
            }
            router.head(RouterPath(route.routerPath ?? route.path)) { request, context in
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
        let logger = self.logger
        let countersIncluded = services.metrics.storeCountersIncluded
        return Application(
            router: buildRouter(),
            server: HTTPServerBuilder { responder in AdminHTTPChannel(responder: responder, configuration: configuration) },
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port),
                                                    serverName: "larder-admin"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.notice("The admin server is serving the store (read-only)",
                              metadata: ["larder.admin.host": "\(configuration.host)", "larder.admin.port": "\(port)"])
                if !countersIncluded {
                    logger.notice("/metrics shows the store's gauges only: the store records its counters through another metrics factory than this server's registry")
                }
                await onServerRunning(port)
            },
            logger: logger
        )
    }

    /// Serves until SIGINT or SIGTERM, then shuts down gracefully.
    ///
    /// - throws: when the address cannot be bound.
    public func run() async throws {
        try await makeApplication().runService()
        logger.notice("The admin server stopped")
    }
}
