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
    @discardableResult
    public func createAccount(_ spec: NewAccount, context: WriteContext) throws -> WriteOutcome<LedgerOutcome<Account>> {
        try write(context, request: spec) { txn in try txn.ledger.createAccount(spec) }
    }

    /// Posts one transfer in its own write.
    @discardableResult
    public func post(_ transfer: TransferRequest, context: WriteContext) throws -> WriteOutcome<LedgerOutcome<Transfer>> {
        try write(context, request: transfer) { txn in try txn.ledger.post(transfer) }
    }

    /// Posts transfers that all succeed or all fail, and reports each one: created, existed,
    /// failed with its own error, or not applied because another failed.
    ///
    /// Errors of the batch as a whole (bad context, storage) are thrown; a failing transfer is
    /// reported, and nothing of the batch is written.
    public func postLinked(_ transfers: [TransferRequest], context: WriteContext) throws -> WriteOutcome<LinkedBatchReport> {
        try write(context, request: LinkedTransfers(transfers)) { txn in
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
