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
    @discardableResult
    public func receiveStock(_ quantity: UInt64, of item: String, at location: StockLocation, transferID: String,
                             refs: [CorrelationRef] = [], context: WriteContext) throws -> WriteOutcome<LedgerOutcome<Transfer>> {
        try move(StockMovementRequest(kind: .receipt, item: item, quantity: quantity, from: nil, to: location, transferID: transferID,
                                      refs: refs), context: context)
    }

    /// The async form of ``receiveStock(_:of:at:transferID:refs:context:)``.
    @discardableResult
    public func receiveStock(_ quantity: UInt64, of item: String, at location: StockLocation, transferID: String,
                             refs: [CorrelationRef] = [], context: WriteContext) async throws -> WriteOutcome<LedgerOutcome<Transfer>> {
        try await move(StockMovementRequest(kind: .receipt, item: item, quantity: quantity, from: nil, to: location,
                                            transferID: transferID, refs: refs), context: context)
    }

    /// Issues stock in its own write; see ``StockWriter/issue(_:of:from:transferID:refs:)``.
    @discardableResult
    public func issueStock(_ quantity: UInt64, of item: String, from location: StockLocation, transferID: String,
                           refs: [CorrelationRef] = [], context: WriteContext) throws -> WriteOutcome<LedgerOutcome<Transfer>> {
        try move(StockMovementRequest(kind: .issue, item: item, quantity: quantity, from: location, to: nil, transferID: transferID,
                                      refs: refs), context: context)
    }

    /// The async form of ``issueStock(_:of:from:transferID:refs:context:)``.
    @discardableResult
    public func issueStock(_ quantity: UInt64, of item: String, from location: StockLocation, transferID: String,
                           refs: [CorrelationRef] = [], context: WriteContext) async throws -> WriteOutcome<LedgerOutcome<Transfer>> {
        try await move(StockMovementRequest(kind: .issue, item: item, quantity: quantity, from: location, to: nil,
                                            transferID: transferID, refs: refs), context: context)
    }

    /// Moves stock between locations in its own write; see ``StockWriter/move(_:of:from:to:transferID:refs:)``.
    @discardableResult
    public func moveStock(_ quantity: UInt64, of item: String, from source: StockLocation, to destination: StockLocation,
                          transferID: String, refs: [CorrelationRef] = [], context: WriteContext) throws -> WriteOutcome<LedgerOutcome<Transfer>> {
        try move(StockMovementRequest(kind: .move, item: item, quantity: quantity, from: source, to: destination,
                                      transferID: transferID, refs: refs), context: context)
    }

    /// The async form of ``moveStock(_:of:from:to:transferID:refs:context:)``.
    @discardableResult
    public func moveStock(_ quantity: UInt64, of item: String, from source: StockLocation, to destination: StockLocation,
                          transferID: String, refs: [CorrelationRef] = [],
                          context: WriteContext) async throws -> WriteOutcome<LedgerOutcome<Transfer>> {
        try await move(StockMovementRequest(kind: .move, item: item, quantity: quantity, from: source, to: destination,
                                            transferID: transferID, refs: refs), context: context)
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
    @discardableResult
    public func recordCount(item: String, location: StockLocation, counted: UInt64, countID: String? = nil,
                            refs: [CorrelationRef] = [], context: WriteContext) throws -> WriteOutcome<StockCount> {
        try performRecognised(context, Self.count(StockCountRequest(item: item, location: location, counted: counted, countID: countID, refs: refs),
                                        context: context))
    }

    /// The async form of ``recordCount(item:location:counted:countID:refs:context:)``.
    @discardableResult
    public func recordCount(item: String, location: StockLocation, counted: UInt64, countID: String? = nil,
                            refs: [CorrelationRef] = [], context: WriteContext) async throws -> WriteOutcome<StockCount> {
        try await performRecognised(context, Self.count(StockCountRequest(item: item, location: location, counted: counted, countID: countID,
                                                                refs: refs), context: context))
    }

    // One body per call, shared by the sync and async forms.

    private func move(_ request: StockMovementRequest, context: WriteContext) throws -> WriteOutcome<LedgerOutcome<Transfer>> {
        try write(context, request: request) { txn in try request.apply(txn.stock) }
    }

    private func move(_ request: StockMovementRequest, context: WriteContext) async throws -> WriteOutcome<LedgerOutcome<Transfer>> {
        try await write(context, request: request) { txn in try request.apply(txn.stock) }
    }

    private static func count(_ request: StockCountRequest, context: WriteContext) -> RecognisedWrite<StockCountRequest, StockCount> {
        RecognisedWrite(
            request: request,
            replayInSnapshot: { view throws(LarderError) in
                guard let countID = request.countID, (try? WriteContext.validateIdentifier(countID, field: "countID")) != nil,
                      let existing = try view.stock.count(id: countID) else { return nil }
                return try? StockWriter.replay(existing, item: request.item, location: request.location, counted: request.counted,
                                               actor: context.actor)
            },
            body: { txn throws(LarderError) in
                try txn.stock.recordCountOrReplay(item: request.item, location: request.location, counted: request.counted,
                                                  countID: request.countID, refs: request.refs)
            })
    }
}
