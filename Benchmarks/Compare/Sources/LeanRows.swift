import Crypto
import Foundation

// The raw contestants' rows, built the way a careful application on raw LMDB (or SQLite) would
// build them: by hand, into buffers allocated once and reused for every write, with no Larder
// helper (no `AuditRecord.encoded()`, no `ByteWriter`, no `JSONWriter`) and no decision parts
// when no decision is written. The bytes are exactly Larder's layouts (docs/FORMAT.md), which
// `--check-rows` proves against ``ReferenceRows`` (built with Larder's own encoders) and against
// the C program in Benchmarks/Compare/c, which builds the same rows the same way.

/// Appends big-endian integers, strings and JSON to a raw buffer. No bounds checks: every row
/// of the harness is far below the buffers' capacity (``LeanRowBuilder`` checks the totals).
struct ByteCursor {
    let base: UnsafeMutablePointer<UInt8>
    var count = 0

    init(_ base: UnsafeMutablePointer<UInt8>, at count: Int = 0) {
        self.base = base
        self.count = count
    }

    @inline(__always) mutating func byte(_ value: UInt8) {
        base[count] = value
        count += 1
    }

    @inline(__always) mutating func bigEndian(_ value: UInt16) {
        withUnsafeBytes(of: value.bigEndian) { (base + count).update(from: $0.baseAddress!.assumingMemoryBound(to: UInt8.self), count: 2) }
        count += 2
    }

    @inline(__always) mutating func bigEndian(_ value: UInt32) {
        withUnsafeBytes(of: value.bigEndian) { (base + count).update(from: $0.baseAddress!.assumingMemoryBound(to: UInt8.self), count: 4) }
        count += 4
    }

    @inline(__always) mutating func bigEndian(_ value: UInt64) {
        withUnsafeBytes(of: value.bigEndian) { (base + count).update(from: $0.baseAddress!.assumingMemoryBound(to: UInt8.self), count: 8) }
        count += 8
    }

    @inline(__always) mutating func literal(_ text: StaticString) {
        (base + count).update(from: text.utf8Start, count: text.utf8CodeUnitCount)
        count += text.utf8CodeUnitCount
    }

    @inline(__always) mutating func raw(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        (base + count).update(from: bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        count += bytes.count
    }

    /// A string behind its big-endian u32 byte count.
    @inline(__always) mutating func string(_ text: StaticString) {
        bigEndian(UInt32(text.utf8CodeUnitCount))
        literal(text)
    }

    /// An identifier (prefix + decimal number) behind its big-endian u32 byte count.
    @inline(__always) mutating func string(_ id: LeanID) {
        bigEndian(UInt32(id.prefix.utf8CodeUnitCount + decimalDigits(id.number)))
        write(id)
    }

    @inline(__always) mutating func write(_ id: LeanID) {
        literal(id.prefix)
        decimal(id.number)
    }

    /// The identifier as a JSON string. Identifiers are letters, digits and `-`: nothing to escape.
    @inline(__always) mutating func jsonString(_ id: LeanID) {
        byte(0x22)
        write(id)
        byte(0x22)
    }

    @inline(__always) mutating func decimal(_ value: UInt64) {
        let digits = decimalDigits(value)
        var rest = value
        var index = count + digits
        repeat {
            index -= 1
            base[index] = UInt8(truncatingIfNeeded: 0x30 &+ rest % 10)
            rest /= 10
        } while rest != 0
        count += digits
    }

    @inline(__always) mutating func decimal(_ value: Int64) {
        if value < 0 {
            byte(0x2D)
            decimal(UInt64(0) &- UInt64(bitPattern: value))
        } else {
            decimal(UInt64(value))
        }
    }

    /// Leaves room for a u32 length and returns where it goes; ``endLength(_:)`` fills it in.
    @inline(__always) mutating func beginLength() -> Int {
        count += 4
        return count - 4
    }

    @inline(__always) mutating func endLength(_ mark: Int) {
        var patch = ByteCursor(base, at: mark)
        patch.bigEndian(UInt32(count - mark - 4))
    }
}

@inline(__always) func decimalDigits(_ value: UInt64) -> Int {
    var digits = 1
    var rest = value
    while rest >= 10 {
        rest /= 10
        digits += 1
    }
    return digits
}

/// An identifier of the harness: a fixed prefix and a number ("t-42", "acct-7"), never a String.
struct LeanID {
    let prefix: StaticString
    let number: UInt64

    /// Byte order of the rendered identifiers, for two with the same prefix: the decimal strings
    /// compared bytewise ("acct-10" < "acct-9"), without rendering them.
    static func lessSamePrefix(_ a: LeanID, _ b: LeanID) -> Bool {
        let da = decimalDigits(a.number), db = decimalDigits(b.number)
        precondition(max(da, db) <= 19, "identifier numbers stay below 10^19")
        var pa = a.number, pb = b.number
        for _ in 0..<(max(da, db) - da) { pa *= 10 }
        for _ in 0..<(max(da, db) - db) { pb *= 10 }
        return pa != pb ? pa < pb : da < db
    }
}

/// Transfer `index`'s identifiers and numbers, computed, never formatted into Strings.
struct LeanSpec {
    let index: Int

    var id: LeanID { LeanID(prefix: "t-", number: UInt64(index)) }
    var requestID: LeanID { LeanID(prefix: "req-", number: UInt64(index)) }
    var decisionID: LeanID { LeanID(prefix: "dec-", number: UInt64(index)) }
    var debit: LeanID { LeanID(prefix: "acct-", number: UInt64(TransferSpec.debitNumber(index))) }
    var credit: LeanID { LeanID(prefix: "acct-", number: UInt64(TransferSpec.creditNumber(index))) }
    var amount: UInt64 { TransferSpec.amount(index) }
    static func importRequestID(_ batchStart: Int) -> LeanID { LeanID(prefix: "import-", number: UInt64(batchStart)) }
}

/// The rows of one transfer, built into buffers owned by the builder and reused by every call.
/// One builder per writing thread.
final class LeanRowBuilder {
    static let auditCapacity = 4_096, transferCapacity = 512, decisionCapacity = 1_024, requestCapacity = 512

    /// 0x00 ‖ record ‖ leaf hash ‖ chain hash: the leading byte is the leaf hash's domain prefix,
    /// so the leaf is one SHA-256 call over contiguous bytes, and the audit value is the rest.
    private let audit = UnsafeMutablePointer<UInt8>.allocate(capacity: auditCapacity)
    private let transfer = UnsafeMutablePointer<UInt8>.allocate(capacity: transferCapacity)
    private let decision = UnsafeMutablePointer<UInt8>.allocate(capacity: decisionCapacity)
    private let request = UnsafeMutablePointer<UInt8>.allocate(capacity: requestCapacity)
    /// 0x01 ‖ previous chain ‖ leaf.
    private let chainInput = UnsafeMutablePointer<UInt8>.allocate(capacity: 65)
    /// Keys: a big-endian seq or an identifier.
    private let key = UnsafeMutablePointer<UInt8>.allocate(capacity: 64)

    /// The chain hash before the first record: 32 zero bytes.
    nonisolated(unsafe) static let genesis = UnsafeRawBufferPointer(
        UnsafeMutableRawBufferPointer.allocate(byteCount: 32, alignment: 8).initializeMemory(as: UInt8.self, repeating: 0))

    private(set) var recordCount = 0
    private(set) var transferCount = 0
    private(set) var decisionCount = 0

    deinit {
        for pointer in [audit, transfer, decision, request, chainInput, key] { pointer.deallocate() }
    }

    /// Audit table value: record ‖ leaf ‖ chain.
    var auditValue: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: audit + 1, count: recordCount + 64) }
    var record: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: audit + 1, count: recordCount) }
    var chainHash: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: audit + 1 + recordCount + 32, count: 32) }
    var transferValue: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: transfer, count: transferCount) }
    /// Empty when the last build wrote no decision.
    var decisionValue: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: decision, count: decisionCount) }

    /// The big-endian seq key, in the builder's key buffer (valid until the next key).
    func seqKey(_ seq: UInt64) -> UnsafeRawBufferPointer {
        var cursor = ByteCursor(key)
        cursor.bigEndian(seq)
        return UnsafeRawBufferPointer(start: key, count: 8)
    }

    /// The identifier's bytes, in the builder's key buffer (valid until the next key).
    func idKey(_ id: LeanID) -> UnsafeRawBufferPointer {
        var cursor = ByteCursor(key)
        cursor.write(id)
        return UnsafeRawBufferPointer(start: key, count: cursor.count)
    }

    /// Builds transfer `spec` as audit record `seq`, chained after `previousChain` (32 bytes; it
    /// may point into this builder's own last chain hash). With `importBatchStart`, the rows of a
    /// bulk import: the request is the batch's, and there is no decision (no fingerprint, no
    /// stored result, no decision row).
    func build(_ spec: LeanSpec, seq: UInt64, timeMicros: Int64, previousChain: UnsafeRawBufferPointer,
               importBatchStart: Int? = nil) {
        // Read the previous chain before the audit buffer (which may hold it) is overwritten.
        chainInput[0] = 0x01
        (chainInput + 1).update(from: previousChain.baseAddress!.assumingMemoryBound(to: UInt8.self), count: 32)
        let withDecision = importBatchStart == nil

        // Audit record, version 1.
        var o = ByteCursor(audit)
        o.byte(0x00)
        o.byte(1)
        o.bigEndian(seq)
        o.bigEndian(UInt64(bitPattern: timeMicros))
        o.string("LEDGER_TRANSFER_POSTED")
        o.string("bench-writer")
        o.string("system")
        if let importBatchStart { o.string(LeanSpec.importRequestID(importBatchStart)) } else { o.string(spec.requestID) }
        o.byte(0) // no trace
        if withDecision {
            o.byte(1)
            o.string(spec.decisionID)
        } else {
            o.byte(0)
        }
        // Refs sorted by (kind, id) bytes: both accounts, then the transfer.
        let debit = spec.debit, credit = spec.credit
        let debitFirst = LeanID.lessSamePrefix(debit, credit)
        o.bigEndian(UInt32(3))
        o.string("account")
        o.string(debitFirst ? debit : credit)
        o.string("account")
        o.string(debitFirst ? credit : debit)
        o.string("transfer")
        o.string(spec.id)
        o.byte(0) // failure category
        o.byte(0) // response type
        o.byte(0) // reason code
        let payload = o.beginLength()
        o.literal("{\"transfer_id\":")
        o.jsonString(spec.id)
        o.literal(",\"kind\":\"single\",\"debit_account\":")
        o.jsonString(debit)
        o.literal(",\"credit_account\":")
        o.jsonString(credit)
        o.literal(",\"amount\":")
        o.decimal(spec.amount)
        o.literal(",\"ledger\":\"credits.cents\",\"code\":0,\"target\":null}")
        o.endLength(payload)
        recordCount = o.count - 1
        precondition(o.count + 64 <= Self.auditCapacity, "audit row too large")

        let leaf = audit + o.count
        sha256(UnsafeRawBufferPointer(start: audit, count: o.count), into: leaf)
        (chainInput + 33).update(from: leaf, count: 32)
        sha256(UnsafeRawBufferPointer(start: chainInput, count: 65), into: leaf + 32)

        // Transfer, version 1.
        o = ByteCursor(transfer)
        o.byte(1)
        o.string("single")
        o.string(debit)
        o.string(credit)
        o.bigEndian(spec.amount)
        o.string("credits.cents")
        o.bigEndian(UInt16(0)) // code
        o.bigEndian(UInt32(0)) // refs
        o.byte(0) // target
        o.bigEndian(UInt64(bitPattern: timeMicros))
        o.bigEndian(seq)
        transferCount = o.count

        guard withDecision else {
            decisionCount = 0
            return
        }
        // The request's fingerprint: SHA-256 of its canonical JSON (sorted keys).
        o = ByteCursor(request)
        o.literal("{\"actor\":{\"id\":\"bench-writer\",\"role\":\"system\"},\"operation\":\"ledger.transfer\",\"request\":{\"amount\":")
        o.decimal(spec.amount)
        o.literal(",\"code\":0,\"creditAccount\":")
        o.jsonString(credit)
        o.literal(",\"debitAccount\":")
        o.jsonString(debit)
        o.literal(",\"id\":")
        o.jsonString(spec.id)
        o.literal(",\"kind\":\"single\",\"refs\":[]}}")
        let requestCount = o.count

        // Decision, version 1: fingerprint, time, seq, operation, the stored result (JSON).
        o = ByteCursor(decision)
        o.byte(1)
        sha256(UnsafeRawBufferPointer(start: request, count: requestCount), into: decision + 1)
        o.count += 32
        o.bigEndian(UInt64(bitPattern: timeMicros))
        o.bigEndian(seq)
        o.string("ledger.transfer")
        let result = o.beginLength()
        o.literal("{\"created\":{\"_0\":{\"amount\":")
        o.decimal(spec.amount)
        o.literal(",\"auditSeq\":")
        o.decimal(seq)
        o.literal(",\"code\":0,\"creditAccount\":")
        o.jsonString(credit)
        o.literal(",\"debitAccount\":")
        o.jsonString(debit)
        o.literal(",\"id\":")
        o.jsonString(spec.id)
        o.literal(",\"kind\":\"single\",\"ledger\":\"credits.cents\",\"refs\":[],\"timeMicros\":")
        o.decimal(timeMicros)
        o.literal("}}}")
        o.endLength(result)
        decisionCount = o.count
        precondition(decisionCount <= Self.decisionCapacity, "decision row too large")
    }
}

/// SHA-256 of `bytes` into 32 bytes at `out` (swift-crypto, as Larder hashes).
@inline(__always) func sha256(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) {
    var hasher = SHA256()
    hasher.update(bufferPointer: bytes)
    hasher.finalize().withUnsafeBytes { digest in
        out.update(from: digest.baseAddress!.assumingMemoryBound(to: UInt8.self), count: 32)
    }
}

// MARK: Reading the rows back

/// A bounds-checked reader over bytes that stay where they are (the map, or SQLite's row).
struct LeanReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    struct Malformed: Error {}

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inline(__always) mutating func byte() throws(Malformed) -> UInt8 {
        guard offset < bytes.count else { throw Malformed() }
        defer { offset += 1 }
        return bytes[offset]
    }

    @inline(__always) mutating func u16() throws(Malformed) -> UInt16 {
        guard bytes.count - offset >= 2 else { throw Malformed() }
        defer { offset += 2 }
        return UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always) mutating func u32() throws(Malformed) -> UInt32 {
        guard bytes.count - offset >= 4 else { throw Malformed() }
        defer { offset += 4 }
        return UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always) mutating func u64() throws(Malformed) -> UInt64 {
        guard bytes.count - offset >= 8 else { throw Malformed() }
        defer { offset += 8 }
        return UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// A length-prefixed string's bytes, in place.
    @inline(__always) mutating func stringBytes() throws(Malformed) -> UnsafeRawBufferPointer {
        let count = Int(try u32())
        guard bytes.count - offset >= count else { throw Malformed() }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
    }

    @inline(__always) mutating func skipString() throws(Malformed) { _ = try stringBytes() }

    /// A length-prefixed string, validated as UTF-8 and copied into a Swift String.
    @inline(__always) mutating func string() throws(Malformed) -> String {
        let raw = try stringBytes()
        guard let text = String(validating: raw.assumingMemoryBound(to: UInt8.self), as: UTF8.self) else { throw Malformed() }
        return text
    }

    @inline(__always) mutating func optionalString() throws(Malformed) -> String? {
        switch try byte() {
        case 0: return nil
        case 1: return try string()
        default: throw Malformed()
        }
    }

    func expectEnd() throws(Malformed) {
        guard offset == bytes.count else { throw Malformed() }
    }
}

extension UnsafeRawBufferPointer {
    func assumingMemoryBound(to: UInt8.Type) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: baseAddress?.assumingMemoryBound(to: UInt8.self), count: count)
    }
}

/// A transfer row decoded into Swift values: what "point read (decoded)" produces on the raw side.
struct DecodedTransfer {
    let kind: String
    let debitAccount: String
    let creditAccount: String
    let amount: UInt64
    let ledger: String
    let code: UInt16
    let refs: [DecodedRef]
    let target: String?
    let timeMicros: Int64
    let auditSeq: UInt64

    static func decode(_ bytes: UnsafeRawBufferPointer) throws(LeanReader.Malformed) -> DecodedTransfer {
        var r = LeanReader(bytes)
        guard try r.byte() == 1 else { throw LeanReader.Malformed() }
        let kind = try r.string(), debit = try r.string(), credit = try r.string()
        let amount = try r.u64()
        let ledger = try r.string()
        let code = try r.u16()
        let refs = try DecodedRef.readAll(&r)
        let target = try r.optionalString()
        let time = Int64(bitPattern: try r.u64())
        let seq = try r.u64()
        try r.expectEnd()
        return DecodedTransfer(kind: kind, debitAccount: debit, creditAccount: credit, amount: amount, ledger: ledger,
                               code: code, refs: refs, target: target, timeMicros: time, auditSeq: seq)
    }

    /// "point read (zero-copy)": the amount, read in place (past kind, debit and credit).
    static func amountInPlace(_ bytes: UnsafeRawBufferPointer) throws(LeanReader.Malformed) -> UInt64 {
        var r = LeanReader(bytes)
        guard try r.byte() == 1 else { throw LeanReader.Malformed() }
        try r.skipString()
        try r.skipString()
        try r.skipString()
        return try r.u64()
    }
}

struct DecodedRef {
    let kind: String
    let id: String

    static func readAll(_ r: inout LeanReader) throws(LeanReader.Malformed) -> [DecodedRef] {
        let count = Int(try r.u32())
        guard count <= 64 else { throw LeanReader.Malformed() }
        if count == 0 { return [] }
        var refs: [DecodedRef] = []
        refs.reserveCapacity(count)
        for _ in 0..<count { refs.append(DecodedRef(kind: try r.string(), id: try r.string())) }
        return refs
    }
}

/// An audit value (record ‖ leaf ‖ chain) decoded into Swift values: what "audit scan (decoded)"
/// produces on the raw side. The hashes stay in the map; the record's fields become Strings.
struct DecodedAuditRecord {
    let seq: UInt64
    let timeMicros: Int64
    let event: String
    let actorID: String
    let role: String
    let requestID: String
    let traceID: String?
    let decisionID: String?
    let refs: [DecodedRef]
    let failureCategory: String?
    let responseType: String?
    let reasonCode: String?
    let payload: String

    static func decode(auditValue value: UnsafeRawBufferPointer) throws(LeanReader.Malformed) -> DecodedAuditRecord {
        guard value.count > 64 else { throw LeanReader.Malformed() }
        var r = LeanReader(UnsafeRawBufferPointer(rebasing: value[..<(value.count - 64)]))
        guard try r.byte() == 1 else { throw LeanReader.Malformed() }
        let seq = try r.u64()
        let time = Int64(bitPattern: try r.u64())
        let event = try r.string(), actor = try r.string(), role = try r.string(), request = try r.string()
        let trace = try r.optionalString(), decision = try r.optionalString()
        let refs = try DecodedRef.readAll(&r)
        let failure = try r.optionalString(), response = try r.optionalString(), reason = try r.optionalString()
        let payload = try r.string()
        try r.expectEnd()
        return DecodedAuditRecord(seq: seq, timeMicros: time, event: event, actorID: actor, role: role, requestID: request,
                                  traceID: trace, decisionID: decision, refs: refs, failureCategory: failure,
                                  responseType: response, reasonCode: reason, payload: payload)
    }
}

/// What "audit scan (views)" does with each record, on every side that can: read seq, time and
/// event where they lie (no copy, no String) and count the records of one event. Format v2's
/// Larder record views are to do the same through their accessors.
struct AuditViewTally {
    var records = 0
    var transfersPosted = 0
    var seqSum: UInt64 = 0
    var latestMicros: Int64 = .min

    private static let event: StaticString = "LEDGER_TRANSFER_POSTED"

    @inline(__always) mutating func visit(auditValue value: UnsafeRawBufferPointer) throws(LeanReader.Malformed) {
        var r = LeanReader(value)
        guard try r.byte() == 1 else { throw LeanReader.Malformed() }
        seqSum &+= try r.u64()
        latestMicros = max(latestMicros, Int64(bitPattern: try r.u64()))
        let event = try r.stringBytes()
        if event.count == Self.event.utf8CodeUnitCount, memcmp(event.baseAddress!, Self.event.utf8Start, event.count) == 0 {
            transfersPosted += 1
        }
        records += 1
    }
}

/// Recomputes the hash chain over stored audit values, reading each value where it lies and
/// chaining from the previous stored chain hash (no copies).
struct LeanChainVerifier {
    private let input = UnsafeMutablePointer<UInt8>.allocate(capacity: 65)
    private let leaf = UnsafeMutablePointer<UInt8>.allocate(capacity: 32)
    /// The leaf hash's domain prefix, 0x00.
    private let leafPrefix = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
    private(set) var checked = 0

    init() {
        input.initialize(repeating: 0, count: 65)
        input[0] = 0x01
        leafPrefix.initialize(to: 0x00)
    }

    func deallocate() {
        input.deallocate()
        leaf.deallocate()
        leafPrefix.deallocate()
    }

    /// Checks one stored value (record ‖ leaf ‖ chain) against the chain so far; false when broken.
    @inline(__always) mutating func check(_ value: UnsafeRawBufferPointer) -> Bool {
        guard value.count > 64 else { return false }
        let recordEnd = value.count - 64
        var hasher = SHA256()
        hasher.update(bufferPointer: UnsafeRawBufferPointer(start: leafPrefix, count: 1))
        hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: value[..<recordEnd]))
        hasher.finalize().withUnsafeBytes { leaf.update(from: $0.baseAddress!.assumingMemoryBound(to: UInt8.self), count: 32) }
        let stored = value.baseAddress! + recordEnd
        guard memcmp(leaf, stored, 32) == 0 else { return false }
        (input + 33).update(from: stored.assumingMemoryBound(to: UInt8.self), count: 32)
        sha256(UnsafeRawBufferPointer(start: input, count: 65), into: leaf)
        guard memcmp(leaf, stored + 32, 32) == 0 else { return false }
        // The stored chain hash is the next record's previous chain.
        (input + 1).update(from: (stored + 32).assumingMemoryBound(to: UInt8.self), count: 32)
        checked += 1
        return true
    }
}
