/// A stored transfer read where it lies in LMDB's map: ``amount`` is one load, every other field
/// is read on demand. Valid only inside the `store.read { }` closure it came from; using it after
/// the closure returned is a precondition failure. ``decoded()`` gives the owned ``Transfer``.
///
/// ```swift
/// let amount = try store.read { view in try view.ledger.transferView(id: "t-1")?.amount }
/// ```
public struct TransferView {
    /// Checked before every access (see ``ViewValidity``).
    let validity: ViewValidity
    /// The transfer's id (its key).
    public let id: String
    let value: UnsafeRawBufferPointer
    /// Where the amount lies: after the version and three strings (kind, debit, credit).
    private let amountOffset: Int

    /// Checks the version and that the strings before the amount, and the amount, are in bounds.
    init(scope: TableReader, id: String, value: UnsafeRawBufferPointer) throws(LarderError) {
        var reader = RawReader(value)
        guard try reader.readUInt8() == Transfer.formatVersion else { throw ByteReader.malformed("transfer \(id) format version") }
        for _ in 0..<3 { _ = try reader.readStringBytes() }
        amountOffset = reader.offset
        _ = try reader.readUInt64()
        validity = scope.viewValidity()
        self.id = id
        self.value = value
    }

    /// The amount moved, in the ledger's unit.
    public var amount: UInt64 {
        validity.check()
        return UInt64(bigEndian: value.loadUnaligned(fromByteOffset: amountOffset, as: UInt64.self))
    }

    public var kind: TransferKind {
        get throws(LarderError) {
            validity.check()
            var reader = RawReader(value, offset: 1)
            return try TransferKind(stored: try reader.readStringBytes())
        }
    }

    public var debitAccount: String {
        get throws(LarderError) { try string(at: 1) }
    }

    public var creditAccount: String {
        get throws(LarderError) { try string(at: 2) }
    }

    public var ledger: String {
        get throws(LarderError) {
            var reader = afterAmount()
            return try reader.readString()
        }
    }

    public var code: UInt16 {
        get throws(LarderError) {
            var reader = afterAmount()
            _ = try reader.readStringBytes()
            return try reader.readUInt16()
        }
    }

    /// The transfer's own correlation refs, in stored order.
    public var refs: [CorrelationRef] {
        get throws(LarderError) { try tail().refs }
    }

    /// The pending transfer resolved, or the transfer reversed.
    public var target: String? {
        get throws(LarderError) { try tail().target }
    }

    public var timeMicros: UnixMicros {
        get throws(LarderError) { try tail().timeMicros }
    }

    /// The audit record of this transfer.
    public var auditSeq: UInt64 {
        get throws(LarderError) { try tail().auditSeq }
    }

    /// The transfer as an owned value: what ``LedgerReader/transfer(id:)`` returns.
    public func decoded() throws(LarderError) -> Transfer {
        validity.check()
        return try Transfer.decode(id: id, value)
    }

    // MARK: Reading

    /// The `index`-th string after the version (0: kind, 1: debit, 2: credit).
    private func string(at index: Int) throws(LarderError) -> String {
        validity.check()
        var reader = RawReader(value, offset: 1)
        for _ in 0..<index { _ = try reader.readStringBytes() }
        return try reader.readString()
    }

    private func afterAmount() -> RawReader {
        validity.check()
        return RawReader(value, offset: amountOffset + 8)
    }

    /// The fields after the code, read to the end (which must be the value's end).
    private func tail() throws(LarderError) -> (refs: [CorrelationRef], target: String?, timeMicros: UnixMicros, auditSeq: UInt64) {
        var reader = afterAmount()
        _ = try reader.readStringBytes()
        _ = try reader.readUInt16()
        let refs = try readRefs(&reader)
        let target = try reader.readOptionalString()
        let time = try reader.readInt64()
        let seq = try reader.readUInt64()
        try reader.expectEnd()
        return (refs, target, time, seq)
    }
}

extension LedgerReader {
    /// The transfer `id` as a view over the snapshot's bytes (the amount read in place, other
    /// fields on demand), or nil. The view is valid only inside this `store.read` closure.
    ///
    /// ```swift
    /// let amount = try store.read { view in try view.ledger.transferView(id: "t-1")?.amount }
    /// ```
    ///
    /// - throws: VALIDATION_FAILED for a malformed id; PERSISTENCE_ERROR when the stored value is
    ///   malformed.
    public func transferView(id: String) throws(LarderError) -> TransferView? {
        try WriteContext.validateIdentifier(id, field: "transfer id")
        let txn = self.txn
        return try txn.withValueBytes(tables.ledgerTransfers, id) { (value: UnsafeRawBufferPointer) throws(LarderError) -> TransferView in
            try TransferView(scope: txn, id: id, value: value)
        }
    }
}
