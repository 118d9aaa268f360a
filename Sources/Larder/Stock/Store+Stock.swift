/// A stock movement as a request, for its decision fingerprint.
public struct StockMovementRequest: FingerprintedRequest, Hashable {
    public static let operationName = "stock.move"

    public enum Kind: String, Sendable, Hashable, Codable {
        case receipt, issue, move
    }

    public let kind: Kind
    public let item: String
    public let quantity: UInt64
    /// The location issued or moved from (nil for a receipt).
    public let from: StockLocation?
    /// The location received at or moved to (nil for an issue).
    public let to: StockLocation?
    public let transferID: String
    public let refs: [CorrelationRef]

    /// The movement, made with `writer`.
    func apply(_ writer: StockWriter) throws(LarderError) -> LedgerOutcome<Transfer> {
        switch kind {
        case .receipt: try writer.receive(quantity, of: item, at: to!, transferID: transferID, refs: refs)
        case .issue: try writer.issue(quantity, of: item, from: from!, transferID: transferID, refs: refs)
        case .move: try writer.move(quantity, of: item, from: from!, to: to!, transferID: transferID, refs: refs)
        }
    }
}

/// A cycle count as a request, for its decision fingerprint.
public struct StockCountRequest: FingerprintedRequest, Hashable {
    public static let operationName = "stock.count"
    public let item: String
    public let location: StockLocation
    public let counted: UInt64
    public let countID: String?
    public let refs: [CorrelationRef]
}

extension Store {
    /// Receives stock in its own write; see ``StockWriter/receive(_:of:at:transferID:refs:)``.
    /// The same receipt again (same transfer id and fields) answers ``LedgerOutcome/exists(_:)``.
    ///
    /// ```swift
    /// try store.receiveStock(40, of: "tomato", at: StockLocation(hub: "central", bin: "A3"), transferID: "grn-2211",
    ///                        refs: [.vendor("green-farm")], context: receiving)
    /// ```
    ///
    /// - throws: see ``StockWriter/receive(_:of:at:transferID:refs:)``.
    @discardableResult
    public func receiveStock(_ quantity: UInt64, of item: String, at location: StockLocation, transferID: String,
                             refs: [CorrelationRef] = [], context: WriteContext) throws -> WriteOutcome<LedgerOutcome<Transfer>> {
        try run(.stockMovement(.init(kind: .receipt, item: item, quantity: quantity, from: nil, to: location, transferID: transferID,
                                     refs: refs)), context: context)
    }

    /// The async form of `receiveStock(_:of:at:transferID:refs:context:)`: suspends instead of
    /// blocking; a task cancelled before the write is queued gets `CancellationError` and nothing
    /// is written.
    ///
    /// ```swift
    /// try await store.receiveStock(40, of: "tomato", at: StockLocation(hub: "central", bin: "A3"), transferID: "grn-2211",
    ///                              context: receiving)
    /// ```
    @discardableResult
    public func receiveStock(_ quantity: UInt64, of item: String, at location: StockLocation, transferID: String,
                             refs: [CorrelationRef] = [], context: WriteContext) async throws -> WriteOutcome<LedgerOutcome<Transfer>> {
        try await run(.stockMovement(.init(kind: .receipt, item: item, quantity: quantity, from: nil, to: location, transferID: transferID,
                                           refs: refs)), context: context)
    }

    /// Issues stock in its own write; see ``StockWriter/issue(_:of:from:transferID:refs:)``.
    ///
    /// ```swift
    /// try store.issueStock(6, of: "tomato", from: StockLocation(hub: "central", bin: "A3"), transferID: "pick-881", context: kitchen)
    /// ```
    ///
    /// - throws: see ``StockWriter/issue(_:of:from:transferID:refs:)``.
    @discardableResult
    public func issueStock(_ quantity: UInt64, of item: String, from location: StockLocation, transferID: String,
                           refs: [CorrelationRef] = [], context: WriteContext) throws -> WriteOutcome<LedgerOutcome<Transfer>> {
        try run(.stockMovement(.init(kind: .issue, item: item, quantity: quantity, from: location, to: nil, transferID: transferID,
                                     refs: refs)), context: context)
    }

    /// The async form of `issueStock(_:of:from:transferID:refs:context:)`: suspends instead of
    /// blocking; a task cancelled before the write is queued gets `CancellationError` and nothing
    /// is written.
    @discardableResult
    public func issueStock(_ quantity: UInt64, of item: String, from location: StockLocation, transferID: String,
                           refs: [CorrelationRef] = [], context: WriteContext) async throws -> WriteOutcome<LedgerOutcome<Transfer>> {
        try await run(.stockMovement(.init(kind: .issue, item: item, quantity: quantity, from: location, to: nil, transferID: transferID,
                                           refs: refs)), context: context)
    }

    /// Moves stock between locations in its own write; see ``StockWriter/move(_:of:from:to:transferID:refs:)``.
    ///
    /// ```swift
    /// try store.moveStock(10, of: "tomato", from: StockLocation(hub: "central", bin: "A3"),
    ///                     to: StockLocation(hub: "central", bin: "line-2"), transferID: "move-412", context: kitchen)
    /// ```
    ///
    /// - throws: see ``StockWriter/move(_:of:from:to:transferID:refs:)``.
    @discardableResult
    public func moveStock(_ quantity: UInt64, of item: String, from source: StockLocation, to destination: StockLocation,
                          transferID: String, refs: [CorrelationRef] = [], context: WriteContext) throws -> WriteOutcome<LedgerOutcome<Transfer>> {
        try run(.stockMovement(.init(kind: .move, item: item, quantity: quantity, from: source, to: destination, transferID: transferID,
                                     refs: refs)), context: context)
    }

    /// The async form of `moveStock(_:of:from:to:transferID:refs:context:)`: suspends instead of
    /// blocking; a task cancelled before the write is queued gets `CancellationError` and nothing
    /// is written.
    @discardableResult
    public func moveStock(_ quantity: UInt64, of item: String, from source: StockLocation, to destination: StockLocation,
                          transferID: String, refs: [CorrelationRef] = [],
                          context: WriteContext) async throws -> WriteOutcome<LedgerOutcome<Transfer>> {
        try await run(.stockMovement(.init(kind: .move, item: item, quantity: quantity, from: source, to: destination,
                                           transferID: transferID, refs: refs)), context: context)
    }

    /// Records a cycle count in its own write; see ``StockWriter/recordCount(item:location:counted:countID:refs:)``.
    ///
    /// A retry with the same decisionID, or the same `countID` and count, answers
    /// ``WriteOutcome/Kind/replayed`` with the count recorded the first time, and writes nothing.
    ///
    /// ```swift
    /// let count = try store.recordCount(item: "tomato", location: StockLocation(hub: "central", bin: "A3"), counted: 31,
    ///                                   countID: "cc-2026-11-23-A3", context: counter).result
    /// ```
    ///
    /// - throws: see ``StockWriter/recordCount(item:location:counted:countID:refs:)``; CONFLICT for
    ///   a decisionID reused with another count.
    @discardableResult
    public func recordCount(item: String, location: StockLocation, counted: UInt64, countID: String? = nil,
                            refs: [CorrelationRef] = [], context: WriteContext) throws -> WriteOutcome<StockCount> {
        try run(.count(StockCountRequest(item: item, location: location, counted: counted, countID: countID, refs: refs),
                       actor: context.actor), context: context)
    }

    /// The async form of `recordCount(item:location:counted:countID:refs:context:)`: suspends
    /// instead of blocking; a task cancelled before the write is queued gets `CancellationError`
    /// and nothing is written (a retry recognised in a read snapshot is answered without queueing).
    ///
    /// ```swift
    /// let count = try await store.recordCount(item: "tomato", location: StockLocation(hub: "central", bin: "A3"),
    ///                                         counted: 31, countID: "cc-2026-11-23-A3", context: counter).result
    /// ```
    @discardableResult
    public func recordCount(item: String, location: StockLocation, counted: UInt64, countID: String? = nil,
                            refs: [CorrelationRef] = [], context: WriteContext) async throws -> WriteOutcome<StockCount> {
        try await run(.count(StockCountRequest(item: item, location: location, counted: counted, countID: countID, refs: refs),
                             actor: context.actor), context: context)
    }
}

extension StoreOperation where Request == StockMovementRequest, Output == LedgerOutcome<Transfer> {
    static func stockMovement(_ request: StockMovementRequest) -> Self {
        Self(request: request) { txn in try request.apply(txn.stock) }
    }
}

extension RecognisedOperation where Request == StockCountRequest, Output == StockCount {
    static func count(_ request: StockCountRequest, actor: ActorIdentity) -> Self {
        Self(request: request, replayInSnapshot: { view throws(LarderError) in
            guard let countID = request.countID, (try? WriteContext.validateIdentifier(countID, field: "countID")) != nil,
                  let existing = try view.stock.count(id: countID) else { return nil }
            return try? StockWriter.replay(existing, item: request.item, location: request.location, counted: request.counted,
                                           actor: actor)
        }, change: { txn throws(LarderError) in
            try txn.stock.recordCountOrReplay(item: request.item, location: request.location, counted: request.counted,
                                              countID: request.countID, refs: request.refs)
        })
    }
}
