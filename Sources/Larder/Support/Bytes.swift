import LarderStorage
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Appends big-endian, length-prefixed fields to a byte array. Every multi-byte integer Larder
/// writes into a record goes through here, so byte order is decided in exactly one place
/// (docs/FORMAT.md describes each record).
package struct ByteWriter: Sendable {
    package private(set) var bytes: [UInt8]

    package init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    package mutating func write(_ value: UInt8) { bytes.append(value) }

    @inline(__always)
    package mutating func write<I: FixedWidthInteger & UnsignedInteger>(_ value: I) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    package mutating func write(_ value: Int64) { write(UInt64(bitPattern: value)) }

    package mutating func write(raw: some Sequence<UInt8>) { bytes.append(contentsOf: raw) }

    /// A UTF-8 string behind a big-endian UInt32 byte count.
    package mutating func write(string: String) {
        // The UTF-8 view of a native string appends as one copy: no intermediate array.
        write(UInt32(string.utf8.count))
        bytes.append(contentsOf: string.utf8)
    }

    /// An optional string: 0x00 when absent, 0x01 followed by the string when present.
    package mutating func write(optional string: String?) {
        if let string {
            write(UInt8(1))
            write(string: string)
        } else {
            write(UInt8(0))
        }
    }

    /// Bytes behind a big-endian UInt32 byte count.
    package mutating func write(blob: [UInt8]) {
        write(UInt32(blob.count))
        bytes.append(contentsOf: blob)
    }
}

/// Reads what ``ByteWriter`` wrote from bytes where they lie (a record in LMDB's map, or an
/// array's storage): every read is bounds-checked and throws on truncated or malformed input, so
/// a damaged record is an error, never a crash. Integers are read by concrete, inlined loads;
/// strings are copied exactly once, into the `String` returned.
///
/// The reader does not own its bytes: use it inside the closure that lent them.
///
/// ```swift
/// try bytes.withUnsafeBytes { raw throws(LarderError) in
///     var reader = RawReader(raw)
///     let seq = try reader.readUInt64()
/// }
/// ```
package struct RawReader {
    package let bytes: UnsafeRawBufferPointer
    package private(set) var offset: Int = 0

    @inline(__always)
    package init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        precondition(offset >= 0 && offset <= bytes.count, "a reader's start lies outside its bytes")
        self.bytes = bytes
        self.offset = offset
    }

    package var remaining: Int { bytes.count - offset }
    package var isAtEnd: Bool { offset == bytes.count }

    @inline(__always)
    package mutating func readUInt8() throws(LarderError) -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    @inline(__always)
    package mutating func readUInt16() throws(LarderError) -> UInt16 {
        try need(2)
        defer { offset += 2 }
        return UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always)
    package mutating func readUInt32() throws(LarderError) -> UInt32 {
        try need(4)
        defer { offset += 4 }
        return UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always)
    package mutating func readUInt64() throws(LarderError) -> UInt64 {
        try need(8)
        defer { offset += 8 }
        return UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inline(__always)
    package mutating func readInt64() throws(LarderError) -> Int64 { Int64(bitPattern: try readUInt64()) }

    /// `count` bytes in place.
    @inline(__always)
    package mutating func readSlice(_ count: Int) throws(LarderError) -> UnsafeRawBufferPointer {
        try need(count)
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
    }

    /// `count` bytes, copied.
    package mutating func readBytes(_ count: Int) throws(LarderError) -> [UInt8] {
        Array(try readSlice(count))
    }

    /// A length-prefixed string's UTF-8 bytes in place, not validated.
    @inline(__always)
    package mutating func readStringBytes() throws(LarderError) -> UnsafeRawBufferPointer {
        try readSlice(Int(try readUInt32()))
    }

    /// A length-prefixed string, validated as UTF-8 and copied once.
    @inline(__always)
    package mutating func readString() throws(LarderError) -> String {
        try UTF8Text.string(try readStringBytes())
    }

    /// An optional string's bytes in place: nil when absent.
    @inline(__always)
    package mutating func readOptionalStringBytes() throws(LarderError) -> UnsafeRawBufferPointer? {
        switch try readUInt8() {
        case 0: return nil
        case 1: return try readStringBytes()
        case let flag: throw Self.malformed("an optional's presence flag is \(flag)")
        }
    }

    package mutating func readOptionalString() throws(LarderError) -> String? {
        try readOptionalStringBytes().map { (bytes: UnsafeRawBufferPointer) throws(LarderError) -> String in
            try UTF8Text.string(bytes)
        }
    }

    package mutating func readBlob() throws(LarderError) -> [UInt8] {
        try readBytes(Int(try readUInt32()))
    }

    /// Throws unless every byte was consumed: trailing bytes mean the record is not what it claims.
    @inline(__always)
    package func expectEnd() throws(LarderError) {
        guard isAtEnd else { throw Self.malformed("\(remaining) unexpected trailing bytes") }
    }

    @inline(__always)
    private func need(_ count: Int) throws(LarderError) {
        guard count >= 0, remaining >= count else {
            throw Self.malformed("needed \(count) bytes at offset \(offset), \(remaining) left")
        }
    }

    package static func malformed(_ detail: String) -> LarderError {
        ByteReader.malformed(detail)
    }
}

/// Reads what ``ByteWriter`` wrote from an array it holds (for values already copied out of the
/// store). Hot paths read in place with ``RawReader`` instead.
package struct ByteReader {
    package let bytes: [UInt8]
    package private(set) var offset: Int = 0

    package init(_ bytes: [UInt8]) { self.bytes = bytes }

    package var remaining: Int { bytes.count - offset }
    package var isAtEnd: Bool { offset == bytes.count }

    /// Runs one read of a ``RawReader`` at this reader's offset, and moves past what it read.
    @inline(__always)
    private mutating func reading<T>(_ body: (inout RawReader) throws(LarderError) -> T) throws(LarderError) -> T {
        let start = offset
        let (value, end) = try bytes.withBytes { (raw: UnsafeRawBufferPointer) throws(LarderError) -> (T, Int) in
            var reader = RawReader(raw, offset: start)
            let value = try body(&reader)
            return (value, reader.offset)
        }
        offset = end
        return value
    }

    package mutating func readUInt8() throws(LarderError) -> UInt8 { try reading { r throws(LarderError) in try r.readUInt8() } }
    package mutating func readUInt16() throws(LarderError) -> UInt16 { try reading { r throws(LarderError) in try r.readUInt16() } }
    package mutating func readUInt32() throws(LarderError) -> UInt32 { try reading { r throws(LarderError) in try r.readUInt32() } }
    package mutating func readUInt64() throws(LarderError) -> UInt64 { try reading { r throws(LarderError) in try r.readUInt64() } }
    package mutating func readInt64() throws(LarderError) -> Int64 { Int64(bitPattern: try readUInt64()) }

    /// A big-endian unsigned integer of `I`'s width. Prefer the concrete reads.
    package mutating func read<I: FixedWidthInteger & UnsignedInteger>(_: I.Type = I.self) throws(LarderError) -> I {
        switch MemoryLayout<I>.size {
        case 1: I(truncatingIfNeeded: try readUInt8())
        case 2: I(truncatingIfNeeded: try readUInt16())
        case 4: I(truncatingIfNeeded: try readUInt32())
        case 8: I(truncatingIfNeeded: try readUInt64())
        default: preconditionFailure("ByteReader reads 1, 2, 4 or 8-byte integers")
        }
    }

    package mutating func readBytes(_ count: Int) throws(LarderError) -> [UInt8] {
        try reading { r throws(LarderError) in try r.readBytes(count) }
    }

    package mutating func readString() throws(LarderError) -> String {
        try reading { r throws(LarderError) in try r.readString() }
    }

    package mutating func readOptionalString() throws(LarderError) -> String? {
        try reading { r throws(LarderError) in try r.readOptionalString() }
    }

    package mutating func readBlob() throws(LarderError) -> [UInt8] {
        try reading { r throws(LarderError) in try r.readBlob() }
    }

    /// Throws unless every byte was consumed: trailing bytes mean the record is not what it claims.
    package func expectEnd() throws(LarderError) {
        guard isAtEnd else { throw Self.malformed("\(remaining) unexpected trailing bytes") }
    }

    package static func malformed(_ detail: String) -> LarderError {
        LarderError(.persistenceError, "A stored value could not be decoded: \(detail).",
                    failureClass: .dataInconsistency, failurePoint: .read)
    }
}

/// UTF-8 text from stored bytes: validated, with a fast path for ASCII (identifiers, event names,
/// and most payloads are ASCII), and copied exactly once into the `String`.
package enum UTF8Text {
    /// Whether every byte is below 0x80, eight bytes at a time.
    @inline(__always)
    package static func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let count = bytes.count
        guard count > 0, let base = bytes.baseAddress else { return true }
        var index = 0
        while index + 8 <= count {
            if base.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { return false }
            index += 8
        }
        var tail: UInt8 = 0
        while index < count {
            tail |= base.load(fromByteOffset: index, as: UInt8.self)
            index += 1
        }
        return tail < 0x80
    }

    /// The bytes as a `String`; throws when they are not valid UTF-8.
    @inline(__always)
    package static func string(_ bytes: UnsafeRawBufferPointer) throws(LarderError) -> String {
        let utf8 = bytes.assumingMemoryBound(to: UInt8.self)
        // ASCII is valid UTF-8 by construction: decoding it cannot repair anything.
        if isASCII(bytes) { return String(decoding: utf8, as: UTF8.self) }
        guard let string = String(validating: utf8, as: UTF8.self) else {
            throw ByteReader.malformed("a string is not valid UTF-8")
        }
        return string
    }

    /// Whether the bytes are valid UTF-8 (what ``string(_:)`` accepts), without building a string.
    package static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if isASCII(bytes) { return true }
        return String(validating: bytes.assumingMemoryBound(to: UInt8.self), as: UTF8.self) != nil
    }

    /// Whether the bytes equal `string`'s UTF-8, without building a string.
    @inline(__always)
    package static func equals(_ bytes: UnsafeRawBufferPointer, _ string: String) -> Bool {
        // Native and literal strings lend their UTF-8 where it lies: no copy of the string (and
        // so no retain and release of its storage); only a bridged one takes the slow way.
        let compared = string.utf8.withContiguousStorageIfAvailable { utf8 in
            utf8.count == bytes.count && (utf8.isEmpty || memcmp(utf8.baseAddress!, bytes.baseAddress!, utf8.count) == 0)
        }
        if let compared { return compared }
        var copy = string
        return copy.withUTF8 { utf8 in
            utf8.count == bytes.count && (utf8.isEmpty || memcmp(utf8.baseAddress!, bytes.baseAddress!, utf8.count) == 0)
        }
    }
}

extension UnsafeRawBufferPointer {
    /// These bytes viewed as UTF-8 code units (no copy).
    @inline(__always)
    func assumingMemoryBound(to: UInt8.Type) -> UnsafeBufferPointer<UInt8> {
        guard let base = baseAddress else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: count)
    }
}

extension Array where Element == UInt8 {
    /// Lowercase hexadecimal, two digits per byte: how hashes, fingerprints and record bytes are
    /// shown (``ChainHead/chainHash``, ``AuditEntry/recordBytes``).
    ///
    /// ```swift
    /// [0x01, 0xab].hexString   // "01ab"
    /// ```
    public var hexString: String {
        withUnsafeBytes { bytes in
            String(unsafeUninitializedCapacity: bytes.count * 2) { out in
                HexDigits.write(bytes, to: out.baseAddress!)
                return bytes.count * 2
            }
        }
    }

    /// Parses lowercase or uppercase hexadecimal; nil when malformed (odd length, a non-hex digit).
    ///
    /// ```swift
    /// [UInt8](hexString: "01AB")   // [0x01, 0xab]
    /// ```
    public init?(hexString: String) {
        let utf8 = Array(hexString.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        self = out
    }
}

/// Lowercase hexadecimal digits, written straight into a buffer.
enum HexDigits {
    private static let table: StaticString = "0123456789abcdef"

    /// Writes two digits per byte of `bytes` at `out` (which has room for `2 × bytes.count`).
    @inline(__always)
    static func write(_ bytes: UnsafeRawBufferPointer, to out: UnsafeMutablePointer<UInt8>) {
        let digits = table.utf8Start
        var index = 0
        for byte in bytes {
            out[index] = digits[Int(byte >> 4)]
            out[index + 1] = digits[Int(byte & 0x0f)]
            index += 2
        }
    }
}
