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
struct ScratchBytes {
    var bytes: [UInt8] = []

    init(capacity: Int = 512) { bytes.reserveCapacity(capacity) }

    mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    // MARK: Keys

    /// A `str` key: 0x00 escaped as 0x00 0xFF, then 0x00 0x00.
    @inline(__always) mutating func keyString(_ text: UnsafeRawBufferPointer) {
        if text.isEmpty || memchr(text.baseAddress!, 0, text.count) == nil {
            bytes.append(contentsOf: text)
        } else {
            for byte in text {
                bytes.append(byte)
                if byte == 0 { bytes.append(0xFF) }
            }
        }
        bytes.append(0)
        bytes.append(0)
    }

    mutating func keyString(_ text: String) {
        var text = text
        text.withUTF8 { keyString(UnsafeRawBufferPointer($0)) }
    }

    @inline(__always) mutating func bigEndian(_ value: UInt64) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    @inline(__always) mutating func bigEndian32(_ value: UInt32) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    /// An `i64` key: the sign bit flipped.
    @inline(__always) mutating func keyInt64(_ value: Int64) { bigEndian(UInt64(bitPattern: value) ^ (1 << 63)) }

    // MARK: Values

    @inline(__always) mutating func raw(_ text: UnsafeRawBufferPointer) { bytes.append(contentsOf: text) }

    mutating func raw(_ text: String) {
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    // MARK: JSON, as JSONWriter writes it

    /// A JSON string: `"` and `\` escaped, control characters as `\n`, `\t`, `\r` or `\u00xx`,
    /// everything else as it is (JSONWriter.appendQuoted, byte for byte).
    mutating func jsonString(_ text: UnsafeRawBufferPointer) {
        bytes.append(0x22)
        for byte in text {
            switch byte {
            case 0x22: bytes.append(0x5C); bytes.append(0x22)
            case 0x5C: bytes.append(0x5C); bytes.append(0x5C)
            case 0x0A: bytes.append(0x5C); bytes.append(0x6E)
            case 0x0D: bytes.append(0x5C); bytes.append(0x72)
            case 0x09: bytes.append(0x5C); bytes.append(0x74)
            case 0..<0x20:
                let digits: [UInt8] = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
            default: bytes.append(byte)
            }
        }
        bytes.append(0x22)
    }

    mutating func jsonString(_ text: String) {
        var text = text
        text.withUTF8 { jsonString(UnsafeRawBufferPointer($0)) }
    }

    /// An unsigned integer in decimal.
    mutating func decimal(_ value: UInt64) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)   // 24 bytes: room for UInt64.max's 20 digits
        withUnsafeMutableBytes(of: &digits) { buffer in
            var position = buffer.count
            var rest = value
            repeat {
                position -= 1
                buffer[position] = UInt8(truncatingIfNeeded: rest % 10) + 0x30
                rest /= 10
            } while rest > 0
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[position...]))
        }
    }
}

/// A ref list built from pieces (a row's own refs plus the ones its audit record adds), sorted
/// and de-duplicated as ``AuditRecord`` stores refs, then added to a fact as the record's refs
/// are. The bytes are copied into one reused arena, so nothing is allocated per row.
struct RefList {
    private var arena: [UInt8] = []
    private var refs: [(kind: Range<Int>, id: Range<Int>)] = []

    init() {
        arena.reserveCapacity(512)
        refs.reserveCapacity(16)
    }

    mutating func reset() {
        arena.removeAll(keepingCapacity: true)
        refs.removeAll(keepingCapacity: true)
    }

    mutating func add(kind: UnsafeRawBufferPointer, id: UnsafeRawBufferPointer) {
        let kindStart = arena.count
        arena.append(contentsOf: kind)
        let idStart = arena.count
        arena.append(contentsOf: id)
        refs.append((kindStart..<idStart, idStart..<arena.count))
    }

    mutating func add(kind: [UInt8], id: UnsafeRawBufferPointer) {
        kind.withUnsafeBytes { add(kind: $0, id: id) }
    }

    mutating func add(kind: [UInt8], id: [UInt8]) {
        kind.withUnsafeBytes { kind in id.withUnsafeBytes { add(kind: kind, id: $0) } }
    }

    /// Reads a stored `refs` field (count, then kind and id of each) and adds its refs.
    mutating func add(stored reader: inout InPlaceReader) throws(Malformed) {
        let count = try reader.u32()
        guard count <= UInt32(AuditDraft.refsCountMax) else { throw Malformed(detail: "\(count) refs") }
        for _ in 0..<count {
            let kind = try reader.string()
            add(kind: kind, id: try reader.string())
        }
    }

    /// Sorts by (kind, id) bytes, drops duplicates, and adds the list to `fact` like
    /// ``RecordFields/addRefs(to:)``.
    mutating func addSorted(to fact: inout Fact) {
        arena.withUnsafeBytes { arena in
            func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: arena[range]) }
            func order(_ a: (kind: Range<Int>, id: Range<Int>), _ b: (kind: Range<Int>, id: Range<Int>)) -> Int {
                let kind = InPlace.compare(bytes(a.kind), bytes(b.kind))
                return kind != 0 ? kind : InPlace.compare(bytes(a.id), bytes(b.id))
            }
            refs.sort { order($0, $1) < 0 }
            var unique = 0
            for index in refs.indices where index == 0 || order(refs[unique - 1], refs[index]) != 0 {
                refs[unique] = refs[index]
                unique += 1
            }
            refs.removeLast(refs.count - unique)
            fact.add(UInt64(refs.count))
            for ref in refs {
                fact.add(bytes: bytes(ref.kind))
                fact.add(bytes: bytes(ref.id))
            }
        }
    }
}
