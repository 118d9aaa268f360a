/// An audit record read where it lies in LMDB's map: nothing is copied or decoded until a field
/// is asked for, and then only that field.
///
/// A view is valid only inside the `store.read { }` closure it came from, like a row of a
/// database cursor: the bytes it reads belong to that snapshot. Using it after the closure
/// returned, or in a write transaction after that transaction's next put or delete, stops the
/// program with a precondition failure (never a read of freed memory). Copy what must outlive
/// the closure with ``decoded()``, or into your own values. The check is one load and one compare
/// per field, and a view holds no reference: making and copying one costs no reference counting.
///
/// ```swift
/// let posted = try store.read { view in
///     var count = 0
///     try view.audit.forEachRecord(fromSeq: 1, limit: 1_000) { record in
///         if record.isEvent(.ledgerTransferPosted) { count += 1 }
///     }
///     return count
/// }
/// ```
///
/// ``seq`` and ``timeMicros`` are read with two loads. The other fields are read on demand and
/// throw PERSISTENCE_ERROR when the stored bytes are malformed (a damaged store), as decoding
/// the whole record would.
public struct AuditRecordView {
    /// Checked before every access: the view's closure has not returned, nor its transaction
    /// written since the view was made. A plain value: making and copying a view touches no
    /// reference count.
    @usableFromInline let validity: ViewValidity
    /// recordBytes ‖ leafHash ‖ chainHash, in the map.
    @usableFromInline let value: UnsafeRawBufferPointer

    /// The record's first fixed fields: version (1), seq (8), time (8), the event's length (4).
    static let headerBytes = 21

    /// Checks what every access relies on: the hashes' room, the version, and the event in bounds.
    /// Made once per record of a scan: the checks are inline, their errors built out of line.
    @inline(__always)
    init(validity: ViewValidity, value: UnsafeRawBufferPointer) throws(LarderError) {
        let recordCount = value.count - 64
        guard recordCount >= Self.headerBytes, value[0] == AuditRecord.formatVersion,
              Int(UInt32(bigEndian: value.loadUnaligned(fromByteOffset: 17, as: UInt32.self))) <= recordCount - Self.headerBytes
        else { throw Self.headerError(value) }
        self.validity = validity
        self.value = value
    }

    /// Why ``init(validity:value:)`` refused `value`.
    @inline(never)
    static func headerError(_ value: UnsafeRawBufferPointer) -> LarderError {
        guard value.count > 64 else { return ByteReader.malformed("an audit value of \(value.count) bytes is too short") }
        do {
            try checkHeader(UnsafeRawBufferPointer(rebasing: value[..<(value.count - 64)]))
        } catch {
            return error
        }
        return ByteReader.malformed("an audit value's header is malformed")
    }

    /// Checks the fixed start of canonical record bytes: the version, and room for seq, time and
    /// the event.
    @inline(__always)
    static func checkHeader(_ record: UnsafeRawBufferPointer) throws(LarderError) {
        guard record.count >= headerBytes else {
            throw ByteReader.malformed("an audit record of \(record.count) bytes is too short")
        }
        let version = record[0]
        guard version == AuditRecord.formatVersion else {
            throw ByteReader.malformed("audit record format version \(version) is not supported (expected \(AuditRecord.formatVersion))")
        }
        let eventCount = Int(UInt32(bigEndian: record.loadUnaligned(fromByteOffset: 17, as: UInt32.self)))
        guard eventCount <= record.count - headerBytes else {
            throw ByteReader.malformed("an audit event of \(eventCount) bytes runs past its record")
        }
    }

    private var recordCount: Int { value.count - 64 }

    // MARK: Fields

    // seq, timeMicros and isEvent are what a scan reads of every record: inlinable, so that a
    // scan's closure in another module reads them in place, without a call each.

    /// The record's sequence number.
    @inlinable
    public var seq: UInt64 {
        validity.check()
        return UInt64(bigEndian: value.loadUnaligned(fromByteOffset: 1, as: UInt64.self))
    }

    /// When the record was written, in microseconds since 1970 (UTC).
    @inlinable
    public var timeMicros: UnixMicros {
        validity.check()
        return Int64(bitPattern: UInt64(bigEndian: value.loadUnaligned(fromByteOffset: 9, as: UInt64.self)))
    }

    /// Whether the record's event is `event`, compared as bytes (nothing is built).
    @inlinable @inline(__always)
    public func isEvent(_ event: AuditEvent) -> Bool {
        validity.check()
        let count = Int(UInt32(bigEndian: value.loadUnaligned(fromByteOffset: 17, as: UInt32.self)))
        let bytes = value.baseAddress! + Self.eventStart
        // A native or literal string lends its UTF-8 where it lies (no copy, no retain).
        return event.rawValue.utf8.withContiguousStorageIfAvailable { utf8 in
            utf8.count == count && (count == 0 || Self.bytesEqual(bytes, UnsafeRawPointer(utf8.baseAddress!), count: count))
        } ?? Self.equalsBridged(UnsafeRawBufferPointer(start: bytes, count: count), event.rawValue)
    }

    /// ``isEvent(_:)`` for a string without contiguous UTF-8 (bridged): out of line.
    @usableFromInline @inline(never)
    static func equalsBridged(_ bytes: UnsafeRawBufferPointer, _ string: String) -> Bool {
        UTF8Text.equals(bytes, string)
    }

    /// Where the event's bytes start (the header's last field is their count).
    @inlinable static var eventStart: Int { 21 }

    /// Whether `count` bytes at `bytes` and at `other` are equal: a word at a time (the last
    /// word overlapping the one before), inlined; a call to `memcmp` costs as much as the
    /// comparison of an event name.
    @inlinable @inline(__always)
    static func bytesEqual(_ bytes: UnsafeRawPointer, _ other: UnsafeRawPointer, count: Int) -> Bool {
        guard count >= 8 else {
            for offset in 0..<count where bytes.load(fromByteOffset: offset, as: UInt8.self) != other.load(fromByteOffset: offset, as: UInt8.self) {
                return false
            }
            return true
        }
        var offset = 0
        while offset < count - 8 {
            guard bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self) == other.loadUnaligned(fromByteOffset: offset, as: UInt64.self) else { return false }
            offset += 8
        }
        return bytes.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self) == other.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
    }

    /// The record's event.
    public var event: AuditEvent {
        get throws(LarderError) {
            validity.check()
            return AuditEvent(rawValue: try UTF8Text.string(eventBytes))
        }
    }

    /// Who acted.
    public var actor: ActorIdentity {
        get throws(LarderError) {
            let layout = try self.layout()
            return ActorIdentity(id: try string(layout.actorID), role: try AuditRecord.role(slice(layout.role)))
        }
    }

    public var requestID: String {
        get throws(LarderError) { try string(try layout().requestID) }
    }

    public var traceID: String? {
        get throws(LarderError) { try optionalString(try layout().traceID) }
    }

    public var decisionID: String? {
        get throws(LarderError) { try optionalString(try layout().decisionID) }
    }

    public var failureCategory: String? {
        get throws(LarderError) { try optionalString(try layout().failureCategory) }
    }

    public var responseType: String? {
        get throws(LarderError) { try optionalString(try layout().responseType) }
    }

    public var reasonCode: String? {
        get throws(LarderError) { try optionalString(try layout().reasonCode) }
    }

    /// How many correlation refs the record has.
    public var refCount: Int {
        get throws(LarderError) { try layout().refCount }
    }

    /// Calls `body` with each correlation ref, in stored order (sorted by kind, then id).
    public func forEachRef(_ body: (CorrelationRef) throws -> Void) throws {
        let layout = try self.layout()
        var reader = RawReader(record, offset: layout.refsStart)
        for _ in 0..<layout.refCount {
            let kind = try reader.readString()
            try body(CorrelationRef(kind, try reader.readString()))
        }
    }

    /// The correlation refs, in stored order.
    public var refs: [CorrelationRef] {
        get throws(LarderError) {
            let layout = try self.layout()
            var reader = RawReader(record, offset: layout.refsStart - 4)
            return try AuditRecord.readRefs(&reader)
        }
    }

    /// Whether the record is about `ref`, compared as bytes (nothing is built).
    public func hasRef(_ ref: CorrelationRef) throws(LarderError) -> Bool {
        let layout = try self.layout()
        var reader = RawReader(record, offset: layout.refsStart)
        for _ in 0..<layout.refCount {
            let kind = try reader.readStringBytes()
            let id = try reader.readStringBytes()
            if UTF8Text.equals(kind, ref.kind) && UTF8Text.equals(id, ref.id) { return true }
        }
        return false
    }

    /// Calls `body` with the payload's UTF-8 bytes where they lie (checked to be UTF-8). The
    /// buffer is valid only inside `body`.
    public func withPayloadUTF8<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let payload = slice(try layout().payload)
        guard UTF8Text.isValid(payload) else { throw ByteReader.malformed("a string is not valid UTF-8") }
        return try body(payload)
    }

    /// The payload, a JSON object as text.
    public var payload: String {
        get throws(LarderError) { try string(try layout().payload) }
    }

    /// Calls `body` with the record's canonical bytes (what the hashes cover) where they lie.
    public func withRecordBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        validity.check()
        return try body(record)
    }

    /// SHA-256(0x00 ‖ recordBytes), as stored.
    public var leafHash: [UInt8] {
        validity.check()
        return Array(value[recordCount..<(recordCount + 32)])
    }

    /// SHA-256(0x01 ‖ previous chainHash ‖ leafHash), as stored.
    public var chainHash: [UInt8] {
        validity.check()
        return Array(value[(recordCount + 32)...])
    }

    /// The record as an owned value, independent of the snapshot: what ``AuditLog/record(seq:)``
    /// returns.
    public func decoded() throws(LarderError) -> AuditEntry {
        validity.check()
        return try AuditEntry.decode(value)
    }

    // MARK: Layout

    var record: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: value[..<recordCount]) }

    private var eventBytes: UnsafeRawBufferPointer { Self.eventBytes(of: value) }

    /// The event's bytes of a record whose header was checked.
    @inline(__always)
    static func eventBytes(of record: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        let count = Int(UInt32(bigEndian: record.loadUnaligned(fromByteOffset: 17, as: UInt32.self)))
        return UnsafeRawBufferPointer(rebasing: record[headerBytes..<(headerBytes + count)])
    }

    /// Where each field after the event lies: one bounds-checked walk over the length prefixes,
    /// which also checks that the record ends exactly where its value's hashes begin.
    struct Layout {
        var actorID: Range<Int>
        var role: Range<Int>
        var requestID: Range<Int>
        var traceID: Range<Int>?
        var decisionID: Range<Int>?
        /// The first ref's offset (just after the count).
        var refsStart: Int
        var refCount: Int
        var failureCategory: Range<Int>?
        var responseType: Range<Int>?
        var reasonCode: Range<Int>?
        var payload: Range<Int>
    }

    func layout() throws(LarderError) -> Layout {
        validity.check()
        return try Self.layout(of: record)
    }

    /// The layout of canonical record bytes whose header (version, seq, time, the event's length)
    /// was checked already.
    static func layout(of record: UnsafeRawBufferPointer) throws(LarderError) -> Layout {
        var reader = RawReader(record, offset: Self.headerBytes - 4)
        func range(_ reader: inout RawReader) throws(LarderError) -> Range<Int> {
            let count = Int(try reader.readUInt32())
            let start = reader.offset
            _ = try reader.readSlice(count)
            return start..<(start + count)
        }
        func optional(_ reader: inout RawReader) throws(LarderError) -> Range<Int>? {
            switch try reader.readUInt8() {
            case 0: return nil
            case 1: return try range(&reader)
            case let flag: throw ByteReader.malformed("an optional's presence flag is \(flag)")
            }
        }
        _ = try range(&reader)
        let actorID = try range(&reader)
        let role = try range(&reader)
        let requestID = try range(&reader)
        let traceID = try optional(&reader)
        let decisionID = try optional(&reader)
        let refCount = try reader.readUInt32()
        guard refCount <= UInt32(AuditDraft.refsCountMax) else { throw ByteReader.malformed("\(refCount) correlation refs") }
        let refsStart = reader.offset
        for _ in 0..<refCount {
            _ = try range(&reader)
            _ = try range(&reader)
        }
        let failureCategory = try optional(&reader)
        let responseType = try optional(&reader)
        let reasonCode = try optional(&reader)
        let payload = try range(&reader)
        try reader.expectEnd()
        return Layout(actorID: actorID, role: role, requestID: requestID, traceID: traceID, decisionID: decisionID,
                      refsStart: refsStart, refCount: Int(refCount), failureCategory: failureCategory,
                      responseType: responseType, reasonCode: reasonCode, payload: payload)
    }

    func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: value[range])
    }

    private func string(_ range: Range<Int>) throws(LarderError) -> String {
        try UTF8Text.string(slice(range))
    }

    private func optionalString(_ range: Range<Int>?) throws(LarderError) -> String? {
        guard let range else { return nil }
        return try string(range)
    }
}
