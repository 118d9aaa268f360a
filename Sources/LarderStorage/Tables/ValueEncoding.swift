/// A value stored in a table. Encodings must be deterministic: the same value always gives the
/// same bytes (the audit chain hashes them).
public protocol StoredValue: Sendable {
    func encodeValue() -> [UInt8]
    static func decodeValue(_ bytes: [UInt8]) throws(LarderError) -> Self
}

extension Array: StoredValue where Element == UInt8 {
    public func encodeValue() -> [UInt8] { self }
    public static func decodeValue(_ bytes: [UInt8]) throws(LarderError) -> [UInt8] { bytes }
}

extension String: StoredValue {
    public func encodeValue() -> [UInt8] { Array(utf8) }
    public static func decodeValue(_ bytes: [UInt8]) throws(LarderError) -> String {
        guard let string = String(validating: bytes, as: UTF8.self) else {
            throw ByteReader.malformed("a string value is not valid UTF-8")
        }
        return string
    }
}

extension UInt64: StoredValue {
    public func encodeValue() -> [UInt8] { encodedKey }
    public static func decodeValue(_ bytes: [UInt8]) throws(LarderError) -> UInt64 { try decodeKey(bytes) }
}

/// The value of an index table, where the key says everything.
public struct Empty: StoredValue, Hashable {
    public init() {}
    public func encodeValue() -> [UInt8] { [] }
    public static func decodeValue(_ bytes: [UInt8]) throws(LarderError) -> Empty {
        guard bytes.isEmpty else { throw ByteReader.malformed("an index entry has a \(bytes.count)-byte value") }
        return Empty()
    }
}
