import LarderStorage
/// Balance rules an account enforces on itself, checked inside the transaction that would break them.
public struct AccountFlags: OptionSet, Sendable, Hashable, Codable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// Debits (posted and pending) may never exceed posted credits: a pack or credit balance
    /// cannot go below zero.
    public static let debitsMustNotExceedCredits = AccountFlags(rawValue: 1 << 0)
    /// Credits (posted and pending) may never exceed posted debits.
    public static let creditsMustNotExceedDebits = AccountFlags(rawValue: 1 << 1)

    static let known: AccountFlags = [.debitsMustNotExceedCredits, .creditsMustNotExceedDebits]

    var names: [String] {
        var names: [String] = []
        if contains(.debitsMustNotExceedCredits) { names.append("debits_must_not_exceed_credits") }
        if contains(.creditsMustNotExceedDebits) { names.append("credits_must_not_exceed_debits") }
        return names
    }
}

/// An account to create. Accounts are immutable once created and never deleted.
///
/// ```swift
/// let packs = NewAccount(id: "cust-17.packs", ledger: "packs", code: 10,
///                        flags: .debitsMustNotExceedCredits, refs: [.customer("17")])
/// ```
public struct NewAccount: Sendable, Hashable, Codable, FingerprintedRequest {
    public static let operationName = "ledger.create_account"

    public var id: String
    /// What the account counts, e.g. `credits.cents`, `packs`, `stock.tomato.units`. A transfer
    /// moves amounts only between accounts of one ledger.
    public var ledger: String
    /// The application's own classification of the account.
    public var code: UInt16
    public var flags: AccountFlags
    public var refs: [CorrelationRef]

    public init(id: String, ledger: String, code: UInt16 = 0, flags: AccountFlags = [], refs: [CorrelationRef] = []) {
        self.id = id
        self.ledger = ledger
        self.code = code
        self.flags = flags
        self.refs = refs
    }
}

/// A created account.
public struct Account: Sendable, Hashable, Codable {
    public let id: String
    public let ledger: String
    public let code: UInt16
    public let flags: AccountFlags
    public let refs: [CorrelationRef]
    public let createdAtMicros: UnixMicros
    /// The audit record that created it.
    public let auditSeq: UInt64

    static let formatVersion: UInt8 = 1

    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 96)
        writer.write(Self.formatVersion)
        writer.write(string: ledger)
        writer.write(code)
        writer.write(flags.rawValue)
        writeRefs(refs, to: &writer)
        writer.write(createdAtMicros)
        writer.write(auditSeq)
        return writer.bytes
    }

    static func decode(id: String, _ bytes: [UInt8]) throws(LarderError) -> Account {
        try bytes.withBytes { (raw: UnsafeRawBufferPointer) throws(LarderError) -> Account in try decode(id: id, raw) }
    }

    static func decode(id: String, _ bytes: UnsafeRawBufferPointer) throws(LarderError) -> Account {
        var reader = RawReader(bytes)
        guard try reader.readUInt8() == formatVersion else { throw ByteReader.malformed("account \(id) format version") }
        let ledger = try reader.readString()
        let code = try reader.readUInt16()
        let flags = AccountFlags(rawValue: try reader.readUInt16())
        let refs = try readRefs(&reader)
        let created = try reader.readInt64()
        let seq = try reader.readUInt64()
        try reader.expectEnd()
        return Account(id: id, ledger: ledger, code: code, flags: flags, refs: refs, createdAtMicros: created, auditSeq: seq)
    }
}

/// An account's balances, in the account's unit. Derived from transfers; kept up to date in the
/// same transaction as each transfer.
public struct Balance: Sendable, Hashable, Codable {
    public var debitsPosted: UInt64 = 0
    public var creditsPosted: UInt64 = 0
    public var debitsPending: UInt64 = 0
    public var creditsPending: UInt64 = 0

    public init(debitsPosted: UInt64 = 0, creditsPosted: UInt64 = 0, debitsPending: UInt64 = 0, creditsPending: UInt64 = 0) {
        self.debitsPosted = debitsPosted
        self.creditsPosted = creditsPosted
        self.debitsPending = debitsPending
        self.creditsPending = creditsPending
    }

    /// Posted credits minus posted debits: what a pack or credit account holds.
    public var net: Int64 {
        Int64(clamping: Int128(creditsPosted) - Int128(debitsPosted))
    }

    /// Posted credits minus posted and pending debits: what may still be spent.
    public var available: Int64 {
        Int64(clamping: Int128(creditsPosted) - Int128(debitsPosted) - Int128(debitsPending))
    }

    static let zero = Balance()

    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 32)
        writer.write(debitsPosted)
        writer.write(creditsPosted)
        writer.write(debitsPending)
        writer.write(creditsPending)
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8]) throws(LarderError) -> Balance {
        try bytes.withBytes { (raw: UnsafeRawBufferPointer) throws(LarderError) -> Balance in try decode(raw) }
    }

    /// Four big-endian u64s, read where they lie.
    @inline(__always)
    static func decode(_ bytes: UnsafeRawBufferPointer) throws(LarderError) -> Balance {
        var reader = RawReader(bytes)
        let balance = Balance(debitsPosted: try reader.readUInt64(), creditsPosted: try reader.readUInt64(),
                              debitsPending: try reader.readUInt64(), creditsPending: try reader.readUInt64())
        try reader.expectEnd()
        return balance
    }
}

/// What a transfer does.
public enum TransferKind: String, Sendable, Hashable, Codable {
    /// Moves `amount` at once (single phase).
    case single
    /// Reserves `amount`: pending debits and credits, to be posted or voided later.
    case pending
    /// Posts all or part of a pending transfer (at most once).
    case postPending
    /// Releases a pending transfer without moving anything (at most once).
    case voidPending
    /// Fully undoes a posted transfer: the same amount in the opposite direction (at most once).
    case reversal
}

/// A transfer to post. Build one with the static constructors.
///
/// ```swift
/// let purchase = TransferRequest.transfer(id: "t-1", debit: "kitchen.packs.issued", credit: "cust-17.packs",
///                                         amount: 10, code: 1, refs: [.order("4411")])
/// let undo = TransferRequest.reversal(id: "t-1.rev", of: "t-1")
/// ```
public struct TransferRequest: Sendable, Hashable, Codable, FingerprintedRequest {
    public static let operationName = "ledger.transfer"

    public var id: String
    public var kind: TransferKind
    /// For `single` and `pending`; derived from the original for the other kinds.
    public var debitAccount: String?
    public var creditAccount: String?
    /// For `single` and `pending`: > 0. For `postPending`: nil posts the whole pending amount.
    /// Derived for `voidPending` and `reversal`.
    public var amount: UInt64?
    public var code: UInt16
    public var refs: [CorrelationRef]
    /// The pending transfer a `postPending` or `voidPending` resolves, or the transfer a
    /// `reversal` undoes.
    public var target: String?

    public static func transfer(id: String, debit: String, credit: String, amount: UInt64, code: UInt16 = 0,
                                refs: [CorrelationRef] = []) -> TransferRequest {
        TransferRequest(id: id, kind: .single, debitAccount: debit, creditAccount: credit, amount: amount, code: code,
                        refs: refs, target: nil)
    }

    public static func pending(id: String, debit: String, credit: String, amount: UInt64, code: UInt16 = 0,
                               refs: [CorrelationRef] = []) -> TransferRequest {
        TransferRequest(id: id, kind: .pending, debitAccount: debit, creditAccount: credit, amount: amount, code: code,
                        refs: refs, target: nil)
    }

    /// Posts `amount` (nil: all) of pending transfer `pending`.
    public static func post(id: String, pending: String, amount: UInt64? = nil, code: UInt16 = 0,
                            refs: [CorrelationRef] = []) -> TransferRequest {
        TransferRequest(id: id, kind: .postPending, debitAccount: nil, creditAccount: nil, amount: amount, code: code,
                        refs: refs, target: pending)
    }

    public static func void(id: String, pending: String, code: UInt16 = 0, refs: [CorrelationRef] = []) -> TransferRequest {
        TransferRequest(id: id, kind: .voidPending, debitAccount: nil, creditAccount: nil, amount: nil, code: code,
                        refs: refs, target: pending)
    }

    /// Fully undoes posted transfer `original`.
    public static func reversal(id: String, of original: String, code: UInt16 = 0, refs: [CorrelationRef] = []) -> TransferRequest {
        TransferRequest(id: id, kind: .reversal, debitAccount: nil, creditAccount: nil, amount: nil, code: code,
                        refs: refs, target: original)
    }
}

/// A posted transfer as stored: immutable.
public struct Transfer: Sendable, Hashable, Codable {
    public let id: String
    public let kind: TransferKind
    public let debitAccount: String
    public let creditAccount: String
    public let amount: UInt64
    public let ledger: String
    public let code: UInt16
    public let refs: [CorrelationRef]
    /// The pending transfer resolved, or the transfer reversed.
    public let target: String?
    public let timeMicros: UnixMicros
    /// The audit record of this transfer.
    public let auditSeq: UInt64

    static let formatVersion: UInt8 = 1

    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 128)
        writer.write(Self.formatVersion)
        writer.write(string: kind.rawValue)
        writer.write(string: debitAccount)
        writer.write(string: creditAccount)
        writer.write(amount)
        writer.write(string: ledger)
        writer.write(code)
        writeRefs(refs, to: &writer)
        writer.write(optional: target)
        writer.write(timeMicros)
        writer.write(auditSeq)
        return writer.bytes
    }

    static func decode(id: String, _ bytes: [UInt8]) throws(LarderError) -> Transfer {
        try bytes.withBytes { (raw: UnsafeRawBufferPointer) throws(LarderError) -> Transfer in try decode(id: id, raw) }
    }

    static func decode(id: String, _ bytes: UnsafeRawBufferPointer) throws(LarderError) -> Transfer {
        var reader = RawReader(bytes)
        guard try reader.readUInt8() == formatVersion else { throw ByteReader.malformed("transfer \(id) format version") }
        let kind = try TransferKind(stored: try reader.readStringBytes())
        let transfer = Transfer(id: id, kind: kind, debitAccount: try reader.readString(), creditAccount: try reader.readString(),
                                amount: try reader.readUInt64(), ledger: try reader.readString(), code: try reader.readUInt16(),
                                refs: try readRefs(&reader), target: try reader.readOptionalString(),
                                timeMicros: try reader.readInt64(), auditSeq: try reader.readUInt64())
        try reader.expectEnd()
        return transfer
    }
}

/// What became of a pending or posted transfer: posted, voided or reversed, and by which transfer.
public struct TransferResolution: Sendable, Hashable, Codable {
    public let kind: TransferKind
    public let byTransfer: String

    public init(kind: TransferKind, byTransfer: String) {
        self.kind = kind
        self.byTransfer = byTransfer
    }

    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 32)
        writer.write(string: kind.rawValue)
        writer.write(string: byTransfer)
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8]) throws(LarderError) -> TransferResolution {
        try bytes.withBytes { (raw: UnsafeRawBufferPointer) throws(LarderError) -> TransferResolution in try decode(raw) }
    }

    static func decode(_ bytes: UnsafeRawBufferPointer) throws(LarderError) -> TransferResolution {
        var reader = RawReader(bytes)
        let kind = try TransferKind(stored: try reader.readStringBytes())
        let resolution = TransferResolution(kind: kind, byTransfer: try reader.readString())
        try reader.expectEnd()
        return resolution
    }
}

/// One line of an account's history: a transfer that touched it and the balance right after.
public struct AccountHistoryEntry: Sendable, Hashable, Codable {
    /// The audit seq of the transfer; history is ordered by it.
    public let seq: UInt64
    public let transferID: String
    public let kind: TransferKind
    /// True when the account was the debit side.
    public let isDebit: Bool
    public let amount: UInt64
    public let balanceAfter: Balance

    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 80)
        writer.write(string: transferID)
        writer.write(string: kind.rawValue)
        writer.write(UInt8(isDebit ? 1 : 0))
        writer.write(amount)
        writer.write(raw: balanceAfter.encoded())
        return writer.bytes
    }

    static func decode(seq: UInt64, _ bytes: [UInt8]) throws(LarderError) -> AccountHistoryEntry {
        try bytes.withBytes { (raw: UnsafeRawBufferPointer) throws(LarderError) -> AccountHistoryEntry in
            try decode(seq: seq, raw)
        }
    }

    static func decode(seq: UInt64, _ bytes: UnsafeRawBufferPointer) throws(LarderError) -> AccountHistoryEntry {
        var reader = RawReader(bytes)
        let id = try reader.readString()
        let kind = try TransferKind(stored: try reader.readStringBytes())
        let isDebit = try reader.readUInt8() == 1
        let amount = try reader.readUInt64()
        let balance = try Balance.decode(try reader.readSlice(32))
        try reader.expectEnd()
        return AccountHistoryEntry(seq: seq, transferID: id, kind: kind, isDebit: isDebit, amount: amount, balanceAfter: balance)
    }
}

/// Whether a create or transfer wrote, or found an identical one already there.
public enum LedgerOutcome<Value: Sendable & Hashable & Codable>: Sendable, Hashable, Codable {
    case created(Value)
    /// The same id with identical fields existed: nothing was written.
    case exists(Value)

    public var value: Value {
        switch self {
        case .created(let value), .exists(let value): value
        }
    }

    public var wasCreated: Bool {
        if case .created = self { return true }
        return false
    }
}

func writeRefs(_ refs: [CorrelationRef], to writer: inout ByteWriter) {
    writer.write(UInt32(refs.count))
    for ref in refs {
        writer.write(string: ref.kind)
        writer.write(string: ref.id)
    }
}

func readRefs(_ reader: inout RawReader) throws(LarderError) -> [CorrelationRef] {
    let count = try reader.readUInt32()
    guard count <= UInt32(AuditDraft.refsCountMax) else { throw ByteReader.malformed("\(count) refs") }
    var refs: [CorrelationRef] = []
    refs.reserveCapacity(Int(count))
    for _ in 0..<count {
        let kind = try reader.readString()
        refs.append(CorrelationRef(kind, try reader.readString()))
    }
    return refs
}

extension TransferKind {
    /// A kind from its stored name, compared as bytes (no string built).
    init(stored bytes: UnsafeRawBufferPointer) throws(LarderError) {
        for kind in [TransferKind.single, .pending, .postPending, .voidPending, .reversal] where UTF8Text.equals(bytes, kind.rawValue) {
            self = kind
            return
        }
        throw ByteReader.malformed("transfer kind \(String(decoding: bytes.assumingMemoryBound(to: UInt8.self), as: UTF8.self))")
    }
}
