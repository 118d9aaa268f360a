import LarderStorage

/// Stock changes inside a write: receipts, issues, moves between locations and cycle counts, all
/// as transfers on the item's ledger (``StockAccounts``). Reached as `txn.stock`.
///
/// Quantities are never set: they derive from receipts, issues, moves and adjustments. A cycle
/// count reconciles by booking the difference as an adjustment transfer, never by overwriting.
/// Accounts are created on first use. Like every domain change, each call decides everything
/// before it writes anything.
public struct StockWriter {
    let transaction: StoreTransaction
    private var tables: StoreTables { transaction.tables }
    private var txn: TableWriter { transaction.txn }
    private var reader: LedgerReader { LedgerReader(txn: txn, tables: tables) }

    /// Refs a movement or count may carry besides its own: an adjustment's record adds the item,
    /// the count, its transfer and two accounts, and a transfer request holds at most 60 refs.
    public static let refsCountMax = AuditDraft.refsCountMax - 6

    // MARK: Movements

    /// Receives `quantity` units of `item` at `location` (from `stock:<item>:received`).
    ///
    /// The transfer id makes a retry harmless: the same receipt again answers ``LedgerOutcome/exists(_:)``.
    ///
    /// ```swift
    /// try txn.stock.receive(40, of: "tomato", at: StockLocation(hub: "central", bin: "A3"), transferID: "grn-2211",
    ///                       refs: [.vendor("green-farm")])
    /// ```
    ///
    /// - throws: VALIDATION_FAILED for a malformed item, location, quantity or id; CONFLICT for a
    ///   transfer id reused with another movement.
    @discardableResult
    public func receive(_ quantity: UInt64, of item: String, at location: StockLocation, transferID: String,
                        refs: [CorrelationRef] = []) throws(LarderError) -> LedgerOutcome<Transfer> {
        try transferStock(item: item, quantity: quantity, from: .counterpart(StockAccounts.received(item: item), StockAccounts.receivedCode),
                 to: .location(location), code: StockAccounts.receiptCode, transferID: transferID, refs: refs)
    }

    /// Issues `quantity` units of `item` from `location` (to `stock:<item>:issued`).
    ///
    /// - throws: NOT_FOUND when the location never held the item; COMPUTE_ERROR when it holds
    ///   less than `quantity`; otherwise as ``receive(_:of:at:transferID:refs:)``.
    @discardableResult
    public func issue(_ quantity: UInt64, of item: String, from location: StockLocation, transferID: String,
                      refs: [CorrelationRef] = []) throws(LarderError) -> LedgerOutcome<Transfer> {
        try transferStock(item: item, quantity: quantity, from: .location(location),
                 to: .counterpart(StockAccounts.issued(item: item), StockAccounts.issuedCode),
                 code: StockAccounts.issueCode, transferID: transferID, refs: refs)
    }

    /// Moves `quantity` units of `item` from one location to another.
    ///
    /// - throws: as ``issue(_:of:from:transferID:refs:)``.
    @discardableResult
    public func move(_ quantity: UInt64, of item: String, from source: StockLocation, to destination: StockLocation,
                     transferID: String, refs: [CorrelationRef] = []) throws(LarderError) -> LedgerOutcome<Transfer> {
        guard source != destination else {
            throw LarderError(.validationFailed, "A move needs two different locations, not \(source) twice.")
        }
        return try transferStock(item: item, quantity: quantity, from: .location(source), to: .location(destination),
                        code: StockAccounts.moveCode, transferID: transferID, refs: refs)
    }

    private enum Side {
        case location(StockLocation)
        case counterpart(String, UInt16)

        func spec(item: String) -> NewAccount {
            switch self {
            case .location(let location): StockAccounts.locationAccount(item: item, at: location)
            case .counterpart(let id, let code): StockAccounts.counterpart(id, item: item, code: code)
            }
        }
    }

    private func transferStock(item: String, quantity: UInt64, from source: Side, to destination: Side, code: UInt16,
                      transferID: String, refs: [CorrelationRef]) throws(LarderError) -> LedgerOutcome<Transfer> {
        // Decide.
        try StockAccounts.validateItem(item)
        for side in [source, destination] { if case .location(let location) = side { try location.validate() } }
        try Self.validate(refs)
        guard quantity > 0 else { throw LarderError(.validationFailed, "A stock movement moves at least one unit.") }
        let debit = source.spec(item: item), credit = destination.spec(item: item)
        var planner = LedgerPlanner(txn: txn, tables: tables, timeMicros: transaction.timeMicros, packsLedger: transaction.policy.packsLedger)
        var plan = WritePlan(firstSeq: try transaction.nextAuditSeq())
        if case .location(let location) = source, try reader.account(id: debit.id) == nil, try reader.transfer(id: transferID) == nil {
            throw LarderError(.notFound, "There is no \(item) at \(location): it was never received there.")
        }
        for spec in [debit, credit] where try reader.account(id: spec.id) == nil {
            try LedgerWriter.validate(spec)
            planner.expect(spec)
            plan.createAccount(spec)
        }
        let planned = try planner.plan(.transfer(id: transferID, debit: debit.id, credit: credit.id, amount: quantity, code: code,
                                                 refs: [.item(item)] + refs))
        guard planned.draft != nil else { return .exists(planned.existing!) }
        plan.transfer(planned)

        // Write.
        try plan.write(transaction)
        guard let transfer = try reader.transfer(id: transferID) else { preconditionFailure("transfer \(transferID) was not written") }
        return .created(transfer)
    }

    // MARK: Counts

    /// Records a cycle count: the quantity counted at `location` is compared with what the ledger
    /// holds there, and the difference is posted as an adjustment transfer (`<count id>.adjust`)
    /// between the location and `stock:<item>:adjustments`; `STOCK_COUNTED` carries the
    /// expected and counted quantities and the adjustment. A count that matches still records
    /// `STOCK_COUNTED`, with no transfer.
    ///
    /// A count changes stock, so it needs a way to recognise its retry: a decisionID on the
    /// write, or a `countID` you choose (the same count again returns the stored one and writes
    /// nothing; another count under that id is CONFLICT).
    ///
    /// ```swift
    /// let count = try txn.stock.recordCount(item: "tomato", location: StockLocation(hub: "central", bin: "A3"),
    ///                                       counted: 31, countID: "cc-2026-11-23-A3")
    /// // count.expected == 34, count.adjustment == -3: three tomatoes booked out as a shortfall
    /// ```
    ///
    /// - throws: VALIDATION_FAILED for a malformed item, location or id, a count above
    ///   9223372036854775807, or neither decisionID nor countID; CONFLICT for a countID reused
    ///   with another count or a derived id that is taken; COMPUTE_ERROR when the location's
    ///   reserved (pending) issues exceed what was counted.
    @discardableResult
    public func recordCount(item: String, location: StockLocation, counted: UInt64, countID: String? = nil,
                            refs: [CorrelationRef] = []) throws(LarderError) -> StockCount {
        try recordCountOrReplay(item: item, location: location, counted: counted, countID: countID, refs: refs).value
    }

    func recordCountOrReplay(item: String, location: StockLocation, counted: UInt64, countID: String?,
                             refs: [CorrelationRef]) throws(LarderError) -> IncidentAnswer<StockCount> {
        // Decide: the retry, then the count's own rules.
        let actor = transaction.context.actor
        if let countID {
            try WriteContext.validateIdentifier(countID, field: "countID")
            if let existing = try StockReader(txn: txn, tables: tables).count(id: countID) {
                return try Self.replay(existing, item: item, location: location, counted: counted, actor: actor)
            }
        }
        try StockAccounts.validateItem(item)
        try location.validate()
        try Self.validate(refs)
        guard counted <= UInt64(Int64.max) else {
            throw LarderError(.validationFailed, "A count of \(counted) is more than \(Int64.max) units.")
        }
        guard transaction.context.decisionID != nil || countID != nil else {
            throw LarderError(.validationFailed,
                              "A cycle count adjusts stock: give the write a decisionID (WriteContext.decisionID) or pass a countID of your choosing, so that a retry is recognised instead of counted twice. Nothing was written.")
        }
        var plan = WritePlan(firstSeq: try transaction.nextAuditSeq())
        let id = countID ?? "count-\(plan.nextSeq)"
        try WriteContext.validateIdentifier(id, field: "count id")
        guard try txn.get(tables.stockCounts, id) == nil else {
            throw LarderError(.conflict, "Stock count \(id) exists already; nothing was written.", failureClass: .validation, retryable: false)
        }
        let adjustID = "\(id).adjust"
        try WriteContext.validateIdentifier(adjustID, field: "adjustment transfer id \(JSONWriter.quoted(adjustID))")
        if try reader.transfer(id: adjustID) != nil {
            throw LarderError(.conflict, "Transfer \(adjustID), the adjustment of this count, exists already; choose another countID. Nothing was written.",
                              failureClass: .validation, retryable: false)
        }
        let spot = StockAccounts.locationAccount(item: item, at: location)
        let adjustments = StockAccounts.counterpart(StockAccounts.adjustments(item: item), item: item, code: StockAccounts.adjustmentsCode)
        let expected: UInt64
        if try reader.account(id: spot.id) != nil {
            let net = try reader.balance(of: spot.id).net
            guard net >= 0 else {
                throw LarderError(.persistenceError, "Stock account \(spot.id) holds \(net), below zero; run verify.",
                                  failureClass: .dataInconsistency)
            }
            expected = UInt64(net)
        } else {
            expected = 0
        }
        let adjustment = Int64(counted) - Int64(expected)
        let countedSeq = plan.nextSeq
        var payload = JSONWriter()
        payload.object { o in
            o.field("count_id", id)
            o.field("item", item)
            o.field("hub", location.hub)
            o.field("bin", location.bin)
            o.field("account", spot.id)
            o.field("expected", expected)
            o.field("counted", counted)
            o.field("adjustment", adjustment)
            o.field("adjustment_transfer", adjustment == 0 ? nil : adjustID)
        }
        try plan.audit(AuditDraft(event: .stockCounted, refs: Array(Set([.stockCount(id), .item(item), .account(spot.id)] + refs)).sorted(),
                                  payload: payload.text))
        if adjustment != 0 {
            var planner = LedgerPlanner(txn: txn, tables: tables, timeMicros: transaction.timeMicros, packsLedger: transaction.policy.packsLedger)
            for spec in [spot, adjustments] where try reader.account(id: spec.id) == nil {
                try LedgerWriter.validate(spec)
                planner.expect(spec)
                plan.createAccount(spec)
            }
            let (debit, credit) = adjustment < 0 ? (spot.id, adjustments.id) : (adjustments.id, spot.id)
            plan.transfer(try planner.plan(.transfer(id: adjustID, debit: debit, credit: credit, amount: adjustment.magnitude,
                                                     code: StockAccounts.adjustmentCode, refs: [.item(item), .stockCount(id)] + refs)))
        }
        let count = StockCount(id: id, item: item, location: location, expected: expected, counted: counted, adjustment: adjustment,
                               adjustmentTransferID: adjustment == 0 ? nil : adjustID, countedBy: actor,
                               timeMicros: transaction.timeMicros, auditSeq: countedSeq)
        plan.put(.stockCounts, id, count.encoded(), insertOnly: true)

        // Write.
        try plan.write(transaction)
        return .applied(count)
    }

    /// A count under an id that exists: a replay when it is the same count by the same actor.
    static func replay(_ existing: StockCount, item: String, location: StockLocation, counted: UInt64,
                       actor: ActorIdentity) throws(LarderError) -> IncidentAnswer<StockCount> {
        let differing: String? = existing.item != item ? "item (\(existing.item) before, \(item) now)"
            : existing.location != location ? "location (\(existing.location) before, \(location) now)"
            : existing.counted != counted ? "count (\(existing.counted) before, \(counted) now)"
            : existing.countedBy != actor ? "actor (\(existing.countedBy) before, \(actor) now)" : nil
        if let differing {
            throw LarderError(.conflict, "Stock count \(existing.id) was recorded already with a different \(differing); nothing was written.",
                              failureClass: .validation, retryable: false)
        }
        return .replayed(existing, seq: existing.auditSeq)
    }

    private static func validate(_ refs: [CorrelationRef]) throws(LarderError) {
        guard refs.count <= refsCountMax else {
            throw LarderError(.validationFailed, "A stock movement or count carries at most \(refsCountMax) refs of its own, not \(refs.count).")
        }
        for ref in refs { try ref.validate() }
    }
}

extension StoreTransaction {
    /// Stock: receipts, issues, moves and cycle counts, as transfers on each item's ledger.
    public var stock: StockWriter { StockWriter(transaction: self) }
}
