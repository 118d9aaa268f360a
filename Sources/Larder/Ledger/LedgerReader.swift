import LarderStorage

/// A page of an account's history.
public struct AccountHistoryPage: Sendable, Hashable {
    public let entries: [AccountHistoryEntry]
    /// Pass back to continue; nil on the last page.
    public let nextCursor: String?
}

/// Reads ledgers in one snapshot: accounts, balances (now or as of an audit seq), transfers,
/// and each account's history. Reached as `view.ledger`.
///
/// ```swift
/// let balance = try store.read { view in try view.ledger.balance(of: "cust-17.credits") }
/// ```
public struct LedgerReader {
    let txn: TableReader
    let tables: StoreTables

    public static let historyEntriesPerPageMax = 1_000

    public func account(id: String) throws(LarderError) -> Account? {
        try WriteContext.validateIdentifier(id, field: "account id")
        return try txn.withValueBytes(tables.ledgerAccounts, id) { bytes throws(LarderError) in try Account.decode(id: id, bytes) }
    }

    /// The account's balances now.
    ///
    /// - throws: NOT_FOUND when there is no such account.
    public func balance(of accountID: String) throws(LarderError) -> Balance {
        try WriteContext.validateIdentifier(accountID, field: "account id")
        guard let balance = try txn.withValueBytes(tables.ledgerBalances, accountID, { bytes throws(LarderError) in
            try Balance.decode(bytes)
        }) else {
            throw LarderError(.notFound, "No account \(accountID).", failurePoint: .read)
        }
        return balance
    }

    /// The account's balances right after the last transfer with audit seq ≤ `seq` (zero before
    /// its first transfer).
    public func balance(of accountID: String, asOfSeq seq: UInt64) throws(LarderError) -> Balance {
        guard try account(id: accountID) != nil else {
            throw LarderError(.notFound, "No account \(accountID).", failurePoint: .read)
        }
        let range = KeyRange<KeyPair<String, UInt64>>.between(KeyPair(accountID, 0), through: KeyPair(accountID, seq))
        guard let last = try txn.last(tables.ledgerHistory, in: range) else { return .zero }
        return try AccountHistoryEntry.decode(seq: last.key.second, last.value).balanceAfter
    }

    public func transfer(id: String) throws(LarderError) -> Transfer? {
        try WriteContext.validateIdentifier(id, field: "transfer id")
        return try txn.withValueBytes(tables.ledgerTransfers, id) { bytes throws(LarderError) in try Transfer.decode(id: id, bytes) }
    }

    /// How a pending transfer was posted or voided, or a posted one reversed; nil while open.
    public func resolution(of transferID: String) throws(LarderError) -> TransferResolution? {
        try txn.withValueBytes(tables.ledgerResolutions, transferID) { bytes throws(LarderError) in try TransferResolution.decode(bytes) }
    }

    /// The transfers that touched an account, oldest or newest first, each with the balance
    /// right after it.
    public func history(of accountID: String, direction: ScanDirection = .forward, limit: Int,
                        cursor: String? = nil) throws(LarderError) -> AccountHistoryPage {
        guard (1...Self.historyEntriesPerPageMax).contains(limit) else {
            throw LarderError(.validationFailed, "limit \(limit) is not in 1...\(Self.historyEntriesPerPageMax).")
        }
        guard try account(id: accountID) != nil else {
            throw LarderError(.notFound, "No account \(accountID).", failurePoint: .read)
        }
        var range = KeyRange<KeyPair<String, UInt64>>.prefix(accountID)
        if let cursor {
            let seq = try AuditLog.parseSeqCursor(cursor)
            range = range.intersected(with: direction == .forward ? .after(KeyPair(accountID, seq)) : .before(KeyPair(accountID, seq)))
        }
        let rows = try txn.scan(tables.ledgerHistory, in: range, direction: direction, limit: limit + 1)
        var entries: [AccountHistoryEntry] = []
        for row in rows.prefix(limit) { entries.append(try AccountHistoryEntry.decode(seq: row.key.second, row.value)) }
        let next = rows.count > limit ? String(rows[limit - 1].key.second) : nil
        return AccountHistoryPage(entries: entries, nextCursor: next)
    }

    /// Accounts in id order, for listings.
    public func accounts(after cursor: String? = nil, limit: Int) throws(LarderError) -> [Account] {
        guard (1...Self.historyEntriesPerPageMax).contains(limit) else {
            throw LarderError(.validationFailed, "limit \(limit) is not in 1...\(Self.historyEntriesPerPageMax).")
        }
        let range: KeyRange<String> = cursor.map { .after($0) } ?? .all
        var accounts: [Account] = []
        for row in try txn.scan(tables.ledgerAccounts, in: range, limit: limit) {
            accounts.append(try Account.decode(id: row.key, row.value))
        }
        return accounts
    }
}
