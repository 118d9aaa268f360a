/// The outcome of a linked batch, transfer by transfer.
public struct LinkedBatchReport: Sendable, Hashable, Codable {
    public enum Item: Sendable, Hashable, Codable {
        case created(Transfer)
        /// An identical transfer existed; nothing was written for it.
        case exists(Transfer)
        /// This transfer failed, with its own error code and message.
        case failed(code: String, message: String)
        /// This transfer was not applied because the transfer at `causeIndex` failed.
        case linkedTransferFailed(causeIndex: Int)
    }

    /// True when every transfer was applied (or existed); false when nothing was.
    public let committed: Bool
    public let items: [Item]
}

/// A linked batch as a request, for its fingerprint.
public struct LinkedTransfers: FingerprintedRequest, Hashable {
    public static let operationName = "ledger.linked_transfers"
    public let transfers: [TransferRequest]
    public init(_ transfers: [TransferRequest]) { self.transfers = transfers }
}

extension Store {
    /// Creates an account in its own write (with `context.decisionID`, if any, as its decision).
    ///
    /// ```swift
    /// try store.createAccount(NewAccount(id: "cust-17.packs", ledger: "packs", flags: .debitsMustNotExceedCredits),
    ///                         context: am)
    /// ```
    ///
    /// - throws: see ``LedgerWriter/createAccount(_:)``.
    @discardableResult
    public func createAccount(_ spec: NewAccount, context: WriteContext) throws -> WriteOutcome<LedgerOutcome<Account>> {
        try run(.createAccount(spec), context: context)
    }

    /// The async form of `createAccount(_:context:)`: suspends instead of blocking; a task
    /// cancelled before the write is queued gets `CancellationError` and nothing is written.
    @discardableResult
    public func createAccount(_ spec: NewAccount, context: WriteContext) async throws -> WriteOutcome<LedgerOutcome<Account>> {
        try await run(.createAccount(spec), context: context)
    }

    /// Posts one transfer in its own write.
    ///
    /// ```swift
    /// try store.post(.transfer(id: "buy-1", debit: "kitchen.packs", credit: "cust-17.packs", amount: 10), context: am)
    /// ```
    ///
    /// - throws: see ``LedgerWriter/post(_:)``.
    @discardableResult
    public func post(_ transfer: TransferRequest, context: WriteContext) throws -> WriteOutcome<LedgerOutcome<Transfer>> {
        try run(.post(transfer), context: context)
    }

    /// The async form of `post(_:context:)`: suspends instead of blocking; a task
    /// cancelled before the write is queued gets `CancellationError` and nothing is written.
    ///
    /// ```swift
    /// try await store.post(.transfer(id: "buy-1", debit: "kitchen.packs", credit: "cust-17.packs", amount: 10), context: am)
    /// ```
    @discardableResult
    public func post(_ transfer: TransferRequest, context: WriteContext) async throws -> WriteOutcome<LedgerOutcome<Transfer>> {
        try await run(.post(transfer), context: context)
    }

    /// Posts transfers that all succeed or all fail, and reports each one: created, existed,
    /// failed with its own error, or not applied because another failed.
    ///
    /// Errors of the batch as a whole (bad context, storage) are thrown; a failing transfer is
    /// reported, and nothing of the batch is written.
    ///
    /// ```swift
    /// let report = try store.postLinked([first, second], context: am).result
    /// if !report.committed { /* report.items says which transfer failed and why */ }
    /// ```
    ///
    /// - throws: VALIDATION_FAILED for a bad context; STORAGE_UNAVAILABLE or PERSISTENCE_ERROR
    ///   when the storage fails.
    public func postLinked(_ transfers: [TransferRequest], context: WriteContext) throws -> WriteOutcome<LinkedBatchReport> {
        try run(.postLinked(transfers), context: context)
    }

    /// The async form of `postLinked(_:context:)`: suspends instead of blocking; a task
    /// cancelled before the write is queued gets `CancellationError` and nothing is written.
    public func postLinked(_ transfers: [TransferRequest], context: WriteContext) async throws -> WriteOutcome<LinkedBatchReport> {
        try await run(.postLinked(transfers), context: context)
    }
}

extension StoreOperation where Request == NewAccount, Output == LedgerOutcome<Account> {
    static func createAccount(_ spec: NewAccount) -> Self {
        Self(request: spec, checksBeforeWriting: true) { txn in try txn.ledger.createAccount(spec) }
    }
}

extension StoreOperation where Request == TransferRequest, Output == LedgerOutcome<Transfer> {
    static func post(_ transfer: TransferRequest) -> Self {
        Self(request: transfer, checksBeforeWriting: true) { txn in try txn.ledger.post(transfer) }
    }
}

extension StoreOperation where Request == LinkedTransfers, Output == LinkedBatchReport {
    static func postLinked(_ transfers: [TransferRequest]) -> Self {
        Self(request: LinkedTransfers(transfers), checksBeforeWriting: true) { txn in
            switch try txn.ledger.planLinked(transfers) {
            case .success(let plans):
                let outcomes = try txn.ledger.apply(plans)
                return LinkedBatchReport(committed: true, items: outcomes.map {
                    switch $0 {
                    case .created(let transfer): .created(transfer)
                    case .exists(let transfer): .exists(transfer)
                    }
                })
            case .failure(let failure):
                let items: [LinkedBatchReport.Item] = transfers.indices.map { index in
                    index == failure.index
                        ? .failed(code: failure.error.code.rawValue, message: failure.error.message)
                        : .linkedTransferFailed(causeIndex: failure.index)
                }
                return LinkedBatchReport(committed: false, items: items)
            }
        }
    }
}
