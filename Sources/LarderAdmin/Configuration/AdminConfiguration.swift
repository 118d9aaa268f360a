public import Larder

/// How the admin server listens and what it allows: every limit of the server lives here, has a
/// default, and is checked by ``validate()`` before the server starts.
///
/// ```swift
/// var configuration = AdminConfiguration()          // 127.0.0.1:8089, 100 budget units/min/token
/// configuration.port = 9090
/// let server = try AdminServer(store: store, tokens: tokens, configuration: configuration)
/// ```
public struct AdminConfiguration: Sendable, Hashable {
    /// Address to bind. Loopback by default: exposing forensic reads beyond the box is a
    /// deliberate choice (put TLS in front; see docs/THREAT-MODEL.md).
    public var host = "127.0.0.1"
    /// TCP port; 0 picks a free one.
    public var port = 8089

    /// Budget units one token may spend per budget window; a request that does not fit in what
    /// is left is 429 RATE_LIMITED + Retry-After. What each request costs is in ``costs``; a page
    /// costs 1, so by default a token makes 100 cheap requests a minute, or 5 verifies.
    public var budgetUnitsPerWindowMax = 100
    /// Length of the budget window, in seconds.
    public var budgetWindowSeconds = 60
    /// What each kind of request costs, in budget units.
    public var costs = AdminCosts()
    /// Expensive requests (verify, export) running at once on this server across all tokens;
    /// one more is 429 RATE_LIMITED + `Retry-After: 1`. A verify shared by several callers counts once.
    public var expensiveRequestsConcurrentMax = 2

    /// The budget used to count requests; it now counts cost units, and a page costs 1.
    @available(*, deprecated, renamed: "budgetUnitsPerWindowMax",
               message: "The budget counts cost units (see costs); a page costs 1 unit.")
    public var requestsPerWindowMax: Int {
        get { budgetUnitsPerWindowMax }
        set { budgetUnitsPerWindowMax = newValue }
    }

    /// Records per page when a query names no `limit`.
    public var pageSizeDefault = 100
    /// Largest `limit` a query may ask for; above it, 400 VALIDATION_FAILED.
    public var pageSizeMax = 1_000
    /// Records read per snapshot while streaming an export: bounds the memory an export holds.
    public var exportPageRecords = 1_000

    /// Longest request target (path + query) accepted, in bytes; above it, 414.
    public var urlBytesMax = 4_096
    /// Largest total of request header names and values accepted, in bytes; above it, 431.
    /// Must stay below the HTTP parser's own 80 KiB cap so that our contract body answers first.
    public var headerBytesMax = 16_384
    /// Most header fields a request may carry; above it, 431. Below the HTTP parser's own cap
    /// (``parserHeaderFieldsMax``), which is also answered with 431 and the contract body.
    public var headerFieldsMax = 100
    /// A connection idle (nothing read or written) this long is closed: bounds slow clients.
    public var requestTimeoutSeconds = 30

    /// `/readyz` fails when more than this fraction of the maximum map is in use.
    public var readinessMapUseFractionMax = 0.9
    /// `/readyz` fails when less than this fraction of the store's file system is free.
    public var readinessDiskFreeFractionMin = 0.2
    /// `/readyz` fails when at least this fraction of the LMDB reader slots is taken.
    public var readinessReaderUseFractionMax = 0.9

    /// The verifier key of the checkpoints `/v1/audit/checkpoint` and `/tlog/checkpoint` serve:
    /// the newest `CHECKPOINT_SIGNED` record by that key. Nil (the default): those routes answer
    /// 404 NOT_FOUND saying that the server has no checkpoint key. `larder serve --signing-key`
    /// sets it and signs checkpoints with the key (see ``CheckpointSigner``).
    public var checkpointKey: NoteVerifierKey?

    public init() {}

    /// The HTTP parser's own header cap; ``headerBytesMax`` must stay below it.
    static let parserHeaderBytesMax = 80 * 1024
    /// The HTTP parser's own cap on header fields; ``headerFieldsMax`` must stay below it.
    static let parserHeaderFieldsMax = 1_000

    /// Throws VALIDATION_FAILED naming the first setting out of range.
    public func validate() throws(LarderError) {
        func require(_ condition: Bool, _ message: String) throws(LarderError) {
            guard condition else { throw LarderError(.validationFailed, "Admin configuration: \(message)") }
        }
        try require(!host.isEmpty, "host must not be empty.")
        try require((0...65_535).contains(port), "port \(port) is not in 0...65535.")
        try require((1...1_000_000).contains(budgetUnitsPerWindowMax),
                    "budgetUnitsPerWindowMax \(budgetUnitsPerWindowMax) is not in 1...1000000.")
        try require((1...86_400).contains(budgetWindowSeconds), "budgetWindowSeconds \(budgetWindowSeconds) is not in 1...86400.")
        // Every admission cost must fit in an empty window, or that request could never run.
        for (name, value) in [("costs.pageUnits", costs.pageUnits), ("costs.verifyUnits", costs.verifyUnits),
                              ("costs.exportUnits", costs.exportUnits)] {
            try require((1...budgetUnitsPerWindowMax).contains(value), "\(name) \(value) is not in 1...\(budgetUnitsPerWindowMax) (budgetUnitsPerWindowMax).")
        }
        try require((0...budgetUnitsPerWindowMax).contains(costs.exportPageUnits),
                    "costs.exportPageUnits \(costs.exportPageUnits) is not in 0...\(budgetUnitsPerWindowMax) (budgetUnitsPerWindowMax).")
        try require((1...64).contains(expensiveRequestsConcurrentMax),
                    "expensiveRequestsConcurrentMax \(expensiveRequestsConcurrentMax) is not in 1...64.")
        try require((1...AuditLog.recordsPerPageMax).contains(pageSizeMax),
                    "pageSizeMax \(pageSizeMax) is not in 1...\(AuditLog.recordsPerPageMax).")
        try require((1...pageSizeMax).contains(pageSizeDefault), "pageSizeDefault \(pageSizeDefault) is not in 1...\(pageSizeMax).")
        try require((1...AuditLog.recordsPerPageMax).contains(exportPageRecords),
                    "exportPageRecords \(exportPageRecords) is not in 1...\(AuditLog.recordsPerPageMax).")
        try require((256...65_536).contains(urlBytesMax), "urlBytesMax \(urlBytesMax) is not in 256...65536.")
        try require((1_024...Self.parserHeaderBytesMax / 2).contains(headerBytesMax),
                    "headerBytesMax \(headerBytesMax) is not in 1024...\(Self.parserHeaderBytesMax / 2).")
        try require((8...Self.parserHeaderFieldsMax / 2).contains(headerFieldsMax),
                    "headerFieldsMax \(headerFieldsMax) is not in 8...\(Self.parserHeaderFieldsMax / 2).")
        try require((1...3_600).contains(requestTimeoutSeconds), "requestTimeoutSeconds \(requestTimeoutSeconds) is not in 1...3600.")
        for (name, value) in [("readinessMapUseFractionMax", readinessMapUseFractionMax),
                              ("readinessDiskFreeFractionMin", readinessDiskFreeFractionMin),
                              ("readinessReaderUseFractionMax", readinessReaderUseFractionMax)] {
            try require((0...1).contains(value), "\(name) \(value) is not in 0...1.")
        }
    }
}

/// What each kind of admin request costs in its token's budget
/// (``AdminConfiguration/budgetUnitsPerWindowMax`` units per window).
///
/// A request is charged its admission cost when it is admitted, whatever its answer; an export
/// is charged ``exportPageUnits`` more for each page after its first, as the pages stream.
///
/// ```swift
/// var configuration = AdminConfiguration()
/// configuration.costs.verifyUnits = 50      // two verifies a minute per token
/// ```
public struct AdminCosts: Sendable, Hashable {
    /// A page of audit records or incidents, one record, incident, account or decision.
    public var pageUnits = 1
    /// `/v1/audit/verify`: reads and hashes the whole store, so its time grows with the store.
    public var verifyUnits = 20
    /// `/v1/audit/export`: admission, which covers its first page.
    public var exportUnits = 10
    /// Each further page of ``AdminConfiguration/exportPageRecords`` records an export streams.
    public var exportPageUnits = 1

    public init() {}
}
