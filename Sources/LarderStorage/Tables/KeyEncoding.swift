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
    /// Calls `body` with this key's encoding, built in a buffer on the stack: the hot paths (every
    /// get, put and delete) encode their keys without a heap allocation. The buffer is valid only
    /// inside `body`.
    ///
    /// ```swift
    /// let found = try "cust-17".withEncodedKey { key in key.count }   // 9
    /// ```
    ///
    /// A key longer than ``KeyWriter/inlineBytesMax`` (which LMDB would refuse anyway) is encoded
    /// on the heap instead, so that the caller can still report its true size.
    @inline(__always)
    package func withEncodedKey<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withUnsafeTemporaryAllocation(byteCount: KeyWriter.inlineBytesMax, alignment: 1) {
            (buffer: UnsafeMutableRawBufferPointer) throws(E) -> R in
            var writer = KeyWriter(buffer)
            encodeKey(into: &writer)
            guard writer.count > KeyWriter.inlineBytesMax else {
                return try body(UnsafeRawBufferPointer(start: buffer.baseAddress, count: writer.count))
            }
            return try encodedOnHeap(writer.count).withBytes { (bytes: UnsafeRawBufferPointer) throws(E) -> R in
                try body(bytes)
            }
        }
    }

    /// This key's full encoding, as an array (for ranges and tests; gets and puts use
    /// ``withEncodedKey(_:)``).
    package var encodedKey: [UInt8] {
        withEncodedKey { (bytes: UnsafeRawBufferPointer) -> [UInt8] in Array(bytes) }
    }

    /// The encoding of a key too long for the stack buffer, `count` bytes.
    private func encodedOnHeap(_ count: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var writer = KeyWriter(UnsafeMutableRawBufferPointer(buffer))
            encodeKey(into: &writer)
            precondition(writer.count == count, "a key's encoding changed between two encodings")
            initialized = count
        }
    }

    /// Decodes a whole key, refusing trailing bytes.
    package static func decodeKey(_ bytes: [UInt8]) throws(StorageError) -> Self {
        var reader = KeyReader(bytes)
        let key = try decodeKey(from: &reader)
        guard reader.isAtEnd else { throw StorageError.malformed("a key has \(reader.remaining) trailing bytes") }
        return key
    }
}

/// Collects a key's bytes into a buffer it does not own (see ``OrderedKey/withEncodedKey(_:)``).
/// Bytes past the buffer's end are counted but not stored, so an oversized key is measured, never
/// written out of bounds.
package struct KeyWriter {
    /// The stack buffer's size: LMDB's default maximum key size (511 bytes) fits.
    package static let inlineBytesMax = 512

    private let buffer: UnsafeMutableRawBufferPointer
    /// Bytes appended so far (may exceed the buffer's size; see above).
    package private(set) var count = 0

    init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }

    @inline(__always)
    package mutating func append(_ byte: UInt8) {
        if count < buffer.count { buffer[count] = byte }
        count += 1
    }

    package mutating func append(contentsOf other: some Sequence<UInt8>) {
        for byte in other { append(byte) }
    }

    @inline(__always)
    package mutating func appendBigEndian<I: FixedWidthInteger & UnsignedInteger>(_ value: I) {
        let size = MemoryLayout<I>.size
        if count + size <= buffer.count {
            buffer.storeBytes(of: value.bigEndian, toByteOffset: count, as: I.self)
            count += size
        } else {
            var shift = (size - 1) * 8
            while shift >= 0 {
                append(UInt8(truncatingIfNeeded: value >> shift))
                shift -= 8
            }
        }
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
        let value = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: I.self) }
        offset += size
        return I(bigEndian: value)
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
        var string = self
        string.withUTF8 { bytes in
            for byte in bytes {
                writer.append(byte)
                if byte == 0 { writer.append(0xFF) }
            }
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
        bytes = KeyPair(high, low).encodedKey
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
