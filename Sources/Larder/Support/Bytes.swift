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

    package mutating func write<I: FixedWidthInteger & UnsignedInteger>(_ value: I) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    package mutating func write(_ value: Int64) { write(UInt64(bitPattern: value)) }

    package mutating func write(raw: some Sequence<UInt8>) { bytes.append(contentsOf: raw) }

    /// A UTF-8 string behind a big-endian UInt32 byte count.
    package mutating func write(string: String) {
        let utf8 = Array(string.utf8)
        write(UInt32(utf8.count))
        bytes.append(contentsOf: utf8)
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

/// Reads what ``ByteWriter`` wrote. Every read is bounds-checked and throws on truncated or
/// malformed input, so a damaged record is an error, never a crash.
package struct ByteReader {
    package let bytes: [UInt8]
    package private(set) var offset: Int = 0

    package init(_ bytes: [UInt8]) { self.bytes = bytes }

    package var remaining: Int { bytes.count - offset }
    package var isAtEnd: Bool { offset == bytes.count }

    package mutating func readUInt8() throws(LarderError) -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    package mutating func read<I: FixedWidthInteger & UnsignedInteger>(_: I.Type = I.self) throws(LarderError) -> I {
        let size = MemoryLayout<I>.size
        try need(size)
        var value: I = 0
        for index in offset..<(offset + size) { value = (value << 8) | I(bytes[index]) }
        offset += size
        return value
    }

    package mutating func readInt64() throws(LarderError) -> Int64 { Int64(bitPattern: try read(UInt64.self)) }

    package mutating func readBytes(_ count: Int) throws(LarderError) -> [UInt8] {
        try need(count)
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    package mutating func readString() throws(LarderError) -> String {
        let count = Int(try read(UInt32.self))
        try need(count)
        // Validated straight from the buffer: no intermediate array per field.
        guard let string = String(validating: bytes[offset..<(offset + count)], as: UTF8.self) else {
            throw Self.malformed("a string is not valid UTF-8")
        }
        offset += count
        return string
    }

    package mutating func readOptionalString() throws(LarderError) -> String? {
        switch try readUInt8() {
        case 0: return nil
        case 1: return try readString()
        case let flag: throw Self.malformed("an optional's presence flag is \(flag)")
        }
    }

    package mutating func readBlob() throws(LarderError) -> [UInt8] {
        try readBytes(Int(try read(UInt32.self)))
    }

    /// Throws unless every byte was consumed: trailing bytes mean the record is not what it claims.
    package func expectEnd() throws(LarderError) {
        guard isAtEnd else { throw Self.malformed("\(remaining) unexpected trailing bytes") }
    }

    private func need(_ count: Int) throws(LarderError) {
        guard count >= 0, remaining >= count else {
            throw Self.malformed("needed \(count) bytes at offset \(offset), \(remaining) left")
        }
    }

    package static func malformed(_ detail: String) -> LarderError {
        LarderError(.persistenceError, "A stored value could not be decoded: \(detail).",
                    failureClass: .dataInconsistency, failurePoint: .read)
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
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(count * 2)
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
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
