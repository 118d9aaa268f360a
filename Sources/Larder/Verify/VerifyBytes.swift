#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why bytes read in place did not decode; the detail is built only for a damaged value.
struct Malformed: Error {
    let detail: String
}

/// Reads the encodings of docs/FORMAT.md section 2.1 from bytes where they lie (LMDB's map),
/// bounds-checked, handing out byte ranges instead of copies. What ``ByteReader`` does for owned
/// values, for verify's single pass.
struct InPlaceReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var isAtEnd: Bool { offset == bytes.count }

    /// Moves to `offset` (for a second pass over fields read before).
    mutating func skip(to offset: Int) { self.offset = offset }

    @inline(__always) private func need(_ count: Int) throws(Malformed) {
        guard count >= 0, bytes.count - offset >= count else {
            throw Malformed(detail: "needed \(count) bytes at offset \(offset), \(bytes.count - offset) left")
        }
    }

    @inline(__always) mutating func u8() throws(Malformed) -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    @inline(__always) mutating func u16() throws(Malformed) -> UInt16 {
        try need(2)
        defer { offset += 2 }
        return UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always) mutating func u32() throws(Malformed) -> UInt32 {
        try need(4)
        defer { offset += 4 }
        return UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always) mutating func u64() throws(Malformed) -> UInt64 {
        try need(8)
        defer { offset += 8 }
        return UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inline(__always) mutating func i64() throws(Malformed) -> Int64 { Int64(bitPattern: try u64()) }

    /// `count` raw bytes.
    @inline(__always) mutating func raw(_ count: Int) throws(Malformed) -> UnsafeRawBufferPointer {
        try need(count)
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
    }

    /// A length-prefixed string, checked to be valid UTF-8.
    @inline(__always) mutating func string() throws(Malformed) -> UnsafeRawBufferPointer {
        let count = Int(try u32())
        let text = try raw(count)
        guard UTF8Check.isValid(text) else { throw Malformed(detail: "a string is not valid UTF-8") }
        return text
    }

    /// `0x00`, or `0x01` and a string.
    @inline(__always) mutating func optionalString() throws(Malformed) -> UnsafeRawBufferPointer? {
        switch try u8() {
        case 0: return nil
        case 1: return try string()
        case let flag: throw Malformed(detail: "an optional's presence flag is \(flag)")
        }
    }

    /// A `refs` field (count, then kind and id of each): checked like ``string()``, skipped.
    /// Returns its offset, for ``RefMerge``.
    mutating func refs() throws(Malformed) -> Int {
        let start = offset
        let count = try u32()
        guard count <= UInt32(AuditDraft.refsCountMax) else { throw Malformed(detail: "\(count) refs") }
        for _ in 0..<(count * 2) { _ = try string() }
        return start
    }

    /// A length-prefixed string already checked by an earlier pass: not checked again.
    @inline(__always) mutating func checkedString() throws(Malformed) -> UnsafeRawBufferPointer {
        try raw(Int(try u32()))
    }

    /// A length-prefixed blob.
    mutating func blob() throws(Malformed) -> UnsafeRawBufferPointer { try raw(Int(try u32())) }

    func expectEnd() throws(Malformed) {
        guard isAtEnd else { throw Malformed(detail: "\(bytes.count - offset) unexpected trailing bytes") }
    }
}

/// UTF-8 validation without building a String: an ASCII fast path eight bytes at a time, then
/// the rules of RFC 3629 (no overlong forms, no surrogates, nothing above U+10FFFF), the same
/// strings `String(validating:as:)` accepts.
enum UTF8Check {
    static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let count = bytes.count
        var index = 0
        while index + 8 <= count {
            if bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { break }
            index += 8
        }
        while index < count {
            let lead = bytes[index]
            if lead < 0x80 {
                index += 1
                continue
            }
            let length: Int
            var lower: UInt8 = 0x80, upper: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; lower = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; upper = 0x9F
            case 0xF0: length = 4; lower = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; upper = 0x8F
            default: return false
            }
            guard index + length <= count else { return false }
            let second = bytes[index + 1]
            guard second >= lower, second <= upper else { return false }
            for offset in 2..<length where bytes[index + offset] & 0xC0 != 0x80 { return false }
            index += length
        }
        return true
    }
}

/// Byte comparisons for bytes in place.
enum InPlace {
    @inline(__always) static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        a.count == b.count && (a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0)
    }

    @inline(__always) static func equal(_ a: UnsafeRawBufferPointer, _ b: [UInt8]) -> Bool {
        b.withUnsafeBytes { equal(a, $0) }
    }

    /// Lexicographic order of unsigned bytes, a prefix first: LMDB's key order, and the order of
    /// sorted refs.
    @inline(__always) static func compare(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        let common = min(a.count, b.count)
        if common > 0 {
            let order = memcmp(a.baseAddress!, b.baseAddress!, common)
            if order != 0 { return order < 0 ? -1 : 1 }
        }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }

    /// Whether `key` starts with `prefix`.
    @inline(__always) static func hasPrefix(_ key: UnsafeRawBufferPointer, _ prefix: UnsafeRawBufferPointer) -> Bool {
        key.count >= prefix.count && (prefix.count == 0 || memcmp(key.baseAddress!, prefix.baseAddress!, prefix.count) == 0)
    }

    /// The bytes as a String for a problem's detail (invalid UTF-8 repaired).
    static func text(_ bytes: UnsafeRawBufferPointer) -> String { String(decoding: bytes, as: UTF8.self) }
}

/// Builds encoded keys (docs/FORMAT.md section 2.2) and JSON texts into a reused buffer, so that
/// verify can compare what a table should hold with what it holds without an allocation per row.
/// One per verify run, used by one thread.
final class ScratchBytes {
    private var storage: UnsafeMutableRawPointer
    @exclusivity(unchecked) private var capacity: Int
    @exclusivity(unchecked) private(set) var count = 0

    init(capacity: Int = 4_096) {
        self.capacity = capacity
        storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
    }

    deinit { storage.deallocate() }

    /// The bytes built so far; valid until the next change.
    var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: storage, count: count) }

    /// A copy of the bytes built so far.
    var bytes: [UInt8] { Array(buffer) }

    @inline(__always) func reset() { count = 0 }

    @inline(__always) private func reserve(_ more: Int) {
        guard count + more > capacity else { return }
        let grown = max(capacity * 2, count + more)
        let bigger = UnsafeMutableRawPointer.allocate(byteCount: grown, alignment: 8)
        bigger.copyMemory(from: storage, byteCount: count)
        storage.deallocate()
        storage = bigger
        capacity = grown
    }

    @inline(__always) func byte(_ value: UInt8) {
        reserve(1)
        storage.storeBytes(of: value, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    @inline(__always) func raw(_ text: UnsafeRawBufferPointer) {
        guard !text.isEmpty else { return }
        reserve(text.count)
        (storage + count).copyMemory(from: text.baseAddress!, byteCount: text.count)
        count += text.count
    }

    func raw(_ text: String) {
        var text = text
        text.withUTF8 { raw(UnsafeRawBufferPointer($0)) }
    }

    @inline(__always) func raw(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw($0) }
    }

    // MARK: Keys

    /// A `str` key: 0x00 escaped as 0x00 0xFF, then 0x00 0x00.
    @inline(__always) func keyString(_ text: UnsafeRawBufferPointer) {
        if text.isEmpty || memchr(text.baseAddress!, 0, text.count) == nil {
            raw(text)
        } else {
            for value in text {
                byte(value)
                if value == 0 { byte(0xFF) }
            }
        }
        byte(0)
        byte(0)
    }

    func keyString(_ text: String) {
        var text = text
        text.withUTF8 { keyString(UnsafeRawBufferPointer($0)) }
    }

    @inline(__always) func bigEndian(_ value: UInt64) {
        reserve(8)
        storage.storeBytes(of: value.bigEndian, toByteOffset: count, as: UInt64.self)
        count += 8
    }

    @inline(__always) func bigEndian32(_ value: UInt32) {
        reserve(4)
        storage.storeBytes(of: value.bigEndian, toByteOffset: count, as: UInt32.self)
        count += 4
    }

    /// An `i64` key: the sign bit flipped.
    @inline(__always) func keyInt64(_ value: Int64) { bigEndian(UInt64(bitPattern: value) ^ (1 << 63)) }

    // MARK: JSON, as JSONWriter writes it

    /// A JSON string: `"` and `\` escaped, control characters as `\n`, `\t`, `\r` or `\u00xx`,
    /// everything else as it is (JSONWriter.appendQuoted, byte for byte).
    func jsonString(_ text: UnsafeRawBufferPointer) {
        byte(0x22)
        // Identifiers, the usual case, need no escape: one copy.
        if !text.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
            raw(text)
            byte(0x22)
            return
        }
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        for value in text {
            switch value {
            case 0x22: byte(0x5C); byte(0x22)
            case 0x5C: byte(0x5C); byte(0x5C)
            case 0x0A: byte(0x5C); byte(0x6E)
            case 0x0D: byte(0x5C); byte(0x72)
            case 0x09: byte(0x5C); byte(0x74)
            case 0..<0x20:
                for piece in [0x5C, 0x75, 0x30, 0x30, digits[Int(value >> 4)], digits[Int(value & 0x0F)]] { byte(piece) }
            default: byte(value)
            }
        }
        byte(0x22)
    }

    func jsonString(_ text: String) {
        var text = text
        text.withUTF8 { jsonString(UnsafeRawBufferPointer($0)) }
    }

    /// An unsigned integer in decimal.
    func decimal(_ value: UInt64) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)   // 24 bytes: room for UInt64.max's 20 digits
        withUnsafeMutableBytes(of: &digits) { buffer in
            var position = buffer.count
            var rest = value
            repeat {
                position -= 1
                buffer[position] = UInt8(truncatingIfNeeded: rest % 10) + 0x30
                rest /= 10
            } while rest > 0
            raw(UnsafeRawBufferPointer(rebasing: buffer[position...]))
        }
    }
}

/// Adds to a fact the refs a record would hold for a row: the row's own stored refs (sorted and
/// unique as stored) merged with the few the record adds (`extra`, sorted and unique), duplicates
/// dropped, as ``RecordFields/addRefs(to:)`` adds a record's refs. Nothing is copied.
enum RefMerge {
    typealias Ref = (kind: UnsafeRawBufferPointer, id: UnsafeRawBufferPointer)

    @inline(__always) static func order(_ a: Ref, _ b: Ref) -> Int {
        let kind = InPlace.compare(a.kind, b.kind)
        return kind != 0 ? kind : InPlace.compare(a.id, b.id)
    }

    /// Sorts a handful of refs in place (insertion sort) and drops duplicates.
    static func sortUnique(_ refs: inout [Ref]) {
        for index in refs.indices.dropFirst() {
            var position = index
            let ref = refs[index]
            while position > 0, order(refs[position - 1], ref) > 0 {
                refs[position] = refs[position - 1]
                position -= 1
            }
            refs[position] = ref
        }
        var unique = 0
        for index in refs.indices where index == 0 || order(refs[unique - 1], refs[index]) != 0 {
            refs[unique] = refs[index]
            unique += 1
        }
        refs.removeLast(refs.count - unique)
    }

    /// The stored refs field starts at `offset` of `row` (count, then kind and id of each),
    /// already validated by the caller's reader.
    static func add(row: UnsafeRawBufferPointer, refsAt offset: Int, extra: [Ref], to fact: inout Fact) {
        func walk(_ visit: (Ref) -> Void) {
            var reader = InPlaceReader(row)
            reader.skip(to: offset)
            let count = Int((try? reader.u32()) ?? 0)
            var own = 0
            var next: Ref? = count > 0 ? Self.read(&reader) : nil
            var extraIndex = 0
            var last: Ref?
            while next != nil || extraIndex < extra.count {
                let take: Ref
                if let candidate = next, extraIndex >= extra.count || order(candidate, extra[extraIndex]) <= 0 {
                    take = candidate
                    own += 1
                    next = own < count ? Self.read(&reader) : nil
                } else {
                    take = extra[extraIndex]
                    extraIndex += 1
                }
                if let last, order(last, take) == 0 { continue }
                visit(take)
                last = take
            }
        }
        var total = 0
        walk { _ in total += 1 }
        fact.add(UInt64(total))
        walk { ref in
            fact.add(bytes: ref.kind)
            fact.add(bytes: ref.id)
        }
    }

    private static func read(_ reader: inout InPlaceReader) -> Ref? {
        guard let kind = try? reader.checkedString(), let id = try? reader.checkedString() else { return nil }
        return (kind, id)
    }
}

