/// A key whose byte encoding sorts exactly like the values it encodes, and which knows where it
/// ends, so that keys concatenate into composite keys without losing either property.
///
/// LMDB compares keys as unsigned bytes, so ordering is a property of the encoding:
/// - unsigned integers: big-endian, fixed width;
/// - signed integers: big-endian with the sign bit flipped (negative before positive);
/// - strings: UTF-8 with `0x00` escaped as `0x00 0xFF`, ended by `0x00 0x00`; byte order of UTF-8
///   is code point order, and the terminator sorts a prefix before its extensions;
/// - fixed-width identifiers: their raw bytes;
/// - ``KeyPair``: the first key's encoding followed by the second's.
///
/// A conformer must guarantee, for all `a` and `b`: `a < b` exactly when `encode(a) < encode(b)`
/// bytewise, and `decode(encode(a)) == a` consuming exactly the bytes written.
package protocol OrderedKey: Sendable, Hashable {
    /// Appends this key's encoding.
    func encodeKey(into writer: inout KeyWriter)
    /// Reads one key from the front of `reader`, consuming exactly its bytes.
    static func decodeKey(from reader: inout KeyReader) throws(StorageError) -> Self
}

extension OrderedKey {
    /// This key's full encoding.
    package var encodedKey: [UInt8] {
        var writer = KeyWriter()
        encodeKey(into: &writer)
        return writer.bytes
    }

    /// Decodes a whole key, refusing trailing bytes.
    package static func decodeKey(_ bytes: [UInt8]) throws(StorageError) -> Self {
        var reader = KeyReader(bytes)
        let key = try decodeKey(from: &reader)
        guard reader.isAtEnd else { throw StorageError.malformed("a key has \(reader.remaining) trailing bytes") }
        return key
    }
}

/// Collects a key's bytes.
package struct KeyWriter: Sendable {
    package private(set) var bytes: [UInt8] = []
    package init() { bytes.reserveCapacity(32) }
    package mutating func append(_ byte: UInt8) { bytes.append(byte) }
    package mutating func append(contentsOf other: some Sequence<UInt8>) { bytes.append(contentsOf: other) }
    package mutating func appendBigEndian<I: FixedWidthInteger & UnsignedInteger>(_ value: I) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }
}

/// Reads keys back; bounds-checked.
package struct KeyReader {
    let bytes: [UInt8]
    package private(set) var offset = 0
    package init(_ bytes: [UInt8]) { self.bytes = bytes }
    package var isAtEnd: Bool { offset == bytes.count }
    package var remaining: Int { bytes.count - offset }

    package mutating func readByte() throws(StorageError) -> UInt8 {
        guard offset < bytes.count else { throw StorageError.malformed("a key ended early") }
        defer { offset += 1 }
        return bytes[offset]
    }

    package mutating func readBigEndian<I: FixedWidthInteger & UnsignedInteger>(_: I.Type) throws(StorageError) -> I {
        let size = MemoryLayout<I>.size
        guard remaining >= size else { throw StorageError.malformed("a key ended early") }
        var value: I = 0
        for index in offset..<(offset + size) { value = (value << 8) | I(bytes[index]) }
        offset += size
        return value
    }

    package mutating func readBytes(_ count: Int) throws(StorageError) -> [UInt8] {
        guard remaining >= count else { throw StorageError.malformed("a key ended early") }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }
}

// MARK: Integers

extension UInt64: OrderedKey {
    package func encodeKey(into writer: inout KeyWriter) { writer.appendBigEndian(self) }
    package static func decodeKey(from reader: inout KeyReader) throws(StorageError) -> UInt64 {
        try reader.readBigEndian(UInt64.self)
    }
}

extension UInt32: OrderedKey {
    package func encodeKey(into writer: inout KeyWriter) { writer.appendBigEndian(self) }
    package static func decodeKey(from reader: inout KeyReader) throws(StorageError) -> UInt32 {
        try reader.readBigEndian(UInt32.self)
    }
}

extension UInt8: OrderedKey {
    package func encodeKey(into writer: inout KeyWriter) { writer.append(self) }
    package static func decodeKey(from reader: inout KeyReader) throws(StorageError) -> UInt8 { try reader.readByte() }
}

extension Int64: OrderedKey {
    /// Flipping the sign bit maps Int64.min...Int64.max onto 0...UInt64.max in order.
    package func encodeKey(into writer: inout KeyWriter) {
        writer.appendBigEndian(UInt64(bitPattern: self) ^ (1 << 63))
    }
    package static func decodeKey(from reader: inout KeyReader) throws(StorageError) -> Int64 {
        Int64(bitPattern: try reader.readBigEndian(UInt64.self) ^ (1 << 63))
    }
}

// MARK: Strings

extension String: OrderedKey {
    package func encodeKey(into writer: inout KeyWriter) {
        for byte in utf8 {
            writer.append(byte)
            if byte == 0 { writer.append(0xFF) }
        }
        writer.append(0)
        writer.append(0)
    }

    package static func decodeKey(from reader: inout KeyReader) throws(StorageError) -> String {
        var raw: [UInt8] = []
        while true {
            let byte = try reader.readByte()
            if byte != 0 {
                raw.append(byte)
                continue
            }
            switch try reader.readByte() {
            case 0:
                guard let string = String(validating: raw, as: UTF8.self) else {
                    throw StorageError.malformed("a string key is not valid UTF-8")
                }
                return string
            case 0xFF: raw.append(0)
            case let other: throw StorageError.malformed("a string key has the escape 0x00 0x\(String(other, radix: 16))")
            }
        }
    }
}

// MARK: Fixed-width identifiers

/// A 16-byte identifier (a UUID's bytes, a hash prefix): encoded as its raw bytes.
package struct ID16: OrderedKey, Comparable, CustomStringConvertible {
    package let bytes: [UInt8]

    package init?(_ bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    package init(high: UInt64, low: UInt64) {
        var writer = KeyWriter()
        writer.appendBigEndian(high)
        writer.appendBigEndian(low)
        bytes = writer.bytes
    }

    package func encodeKey(into writer: inout KeyWriter) { writer.append(contentsOf: bytes) }
    package static func decodeKey(from reader: inout KeyReader) throws(StorageError) -> ID16 {
        ID16(try reader.readBytes(16))!
    }
    package static func < (lhs: ID16, rhs: ID16) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }
    package var description: String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0f)]] }, as: UTF8.self)
    }
}

// MARK: Composite keys

/// Two keys in one: sorts by the first, then by the second. Nest pairs for more parts.
package struct KeyPair<First: OrderedKey, Second: OrderedKey>: OrderedKey {
    package var first: First
    package var second: Second

    package init(_ first: First, _ second: Second) {
        self.first = first
        self.second = second
    }

    package func encodeKey(into writer: inout KeyWriter) {
        first.encodeKey(into: &writer)
        second.encodeKey(into: &writer)
    }

    package static func decodeKey(from reader: inout KeyReader) throws(StorageError) -> KeyPair {
        let first = try First.decodeKey(from: &reader)
        let second = try Second.decodeKey(from: &reader)
        return KeyPair(first, second)
    }
}
