/// A value stored in a table. Encodings must be deterministic: the same value always gives the
/// same bytes (the audit chain hashes them).
package protocol StoredValue: Sendable {
    func encodeValue() -> [UInt8]
    static func decodeValue(_ bytes: [UInt8]) throws(StorageError) -> Self
}

extension Array: StoredValue where Element == UInt8 {
    package func encodeValue() -> [UInt8] { self }
    package static func decodeValue(_ bytes: [UInt8]) throws(StorageError) -> [UInt8] { bytes }
}

extension String: StoredValue {
    package func encodeValue() -> [UInt8] { Array(utf8) }
    package static func decodeValue(_ bytes: [UInt8]) throws(StorageError) -> String {
        guard let string = String(validating: bytes, as: UTF8.self) else {
            throw StorageError.malformed("a string value is not valid UTF-8")
        }
        return string
    }
}

extension UInt64: StoredValue {
    package func encodeValue() -> [UInt8] { encodedKey }
    package static func decodeValue(_ bytes: [UInt8]) throws(StorageError) -> UInt64 { try decodeKey(bytes) }
}

/// The value of an index table, where the key says everything.
package struct Empty: StoredValue, Hashable {
    package init() {}
    package func encodeValue() -> [UInt8] { [] }
    package static func decodeValue(_ bytes: [UInt8]) throws(StorageError) -> Empty {
        guard bytes.isEmpty else { throw StorageError.malformed("an index entry has a \(bytes.count)-byte value") }
        return Empty()
    }
}
