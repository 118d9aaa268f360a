internal import CLMDB

/// A named LMDB table (a "DBI") whose keys and values have fixed Swift types.
///
/// Tables are declared when the environment opens (``Environment/open(at:options:tables:)``) and
/// looked up by name with ``Environment/table(_:key:value:)``. A `Table` is only a typed name for
/// the handle: it holds no data and can be copied and shared freely.
///
/// A table may also be a *view* of one part of a shared LMDB table: every key of the view is
/// stored behind one prefix byte (``keyPrefix``), which reads and writes through the view add and
/// strip, and a range of the view stays within its prefix. Several views with different prefixes
/// (and key types) then share one B-tree, so that a write touching several of them dirties one
/// tree's pages, not several trees'.
package struct Table<Key: OrderedKey, Value: StoredValue>: Sendable, Hashable {
    package let name: String
    let dbi: UInt32
    /// The byte every key of this view starts with in the shared table; nil for a whole table.
    package let keyPrefix: UInt8?

    init(name: String, dbi: MDB_dbi, keyPrefix: UInt8? = nil) {
        precondition(keyPrefix.map { $0 < 0xFF } ?? true, "a view's prefix byte is below 0xFF")
        self.name = name
        self.dbi = dbi
        self.keyPrefix = keyPrefix
    }

    /// The range of the shared table's encoded keys that `range` of this view covers.
    func storedBounds(_ range: KeyRange<Key>) -> (lower: [UInt8]?, upper: [UInt8]?) {
        guard let keyPrefix else { return (range.lower, range.upper) }
        return ([keyPrefix] + (range.lower ?? []), range.upper.map { [keyPrefix] + $0 } ?? [keyPrefix + 1])
    }
}

/// One key and value read from a table; both are copies, independent of the transaction.
package struct Entry<Key: OrderedKey, Value: StoredValue>: Sendable {
    package let key: Key
    package let value: Value

    package init(key: Key, value: Value) {
        self.key = key
        self.value = value
    }
}

/// Which way a range scan walks.
package enum CursorDirection: String, Sendable, Hashable {
    case forward, backward
}

/// A range of encoded keys: `lower` inclusive, `upper` exclusive, either may be open.
package struct KeyRange<Key: OrderedKey>: Sendable, Hashable {
    package var lower: [UInt8]?
    package var upper: [UInt8]?

    package init(lowerBytes: [UInt8]?, upperBytes: [UInt8]?) {
        lower = lowerBytes
        upper = upperBytes
    }

    /// Every key.
    package static var all: KeyRange { KeyRange(lowerBytes: nil, upperBytes: nil) }

    /// Keys at or after `key`.
    package static func from(_ key: Key) -> KeyRange { KeyRange(lowerBytes: key.encodedKey, upperBytes: nil) }

    /// Keys strictly after `key`: where the next forward page starts.
    package static func after(_ key: Key) -> KeyRange {
        KeyRange(lowerBytes: key.encodedKey + [0], upperBytes: nil)
    }

    /// Keys strictly before `key`: where the next backward page starts.
    package static func before(_ key: Key) -> KeyRange { KeyRange(lowerBytes: nil, upperBytes: key.encodedKey) }

    /// Keys in `lower ..< upper`.
    package static func between(_ lower: Key, _ upper: Key) -> KeyRange {
        KeyRange(lowerBytes: lower.encodedKey, upperBytes: upper.encodedKey)
    }

    /// Keys in `lower ... upper`.
    package static func between(_ lower: Key, through upper: Key) -> KeyRange {
        KeyRange(lowerBytes: lower.encodedKey, upperBytes: upper.encodedKey + [0])
    }

    /// Keys whose encoding starts with `prefix`.
    package static func prefix(bytes prefix: [UInt8]) -> KeyRange {
        KeyRange(lowerBytes: prefix, upperBytes: successor(ofPrefix: prefix))
    }

    /// The same range, narrowed so it also lies in `other`.
    package func intersected(with other: KeyRange) -> KeyRange {
        var result = self
        if let lowerOther = other.lower, lower.map({ lowerOther.lexicographicallyPrecedes($0) == false }) ?? true {
            result.lower = lowerOther
        }
        if let upperOther = other.upper, upper.map({ upperOther.lexicographicallyPrecedes($0) }) ?? true {
            result.upper = upperOther
        }
        return result
    }

    /// True when `encoded` lies in the range.
    package func contains(encoded: [UInt8]) -> Bool {
        if let lower, encoded.lexicographicallyPrecedes(lower) { return false }
        if let upper, !encoded.lexicographicallyPrecedes(upper) { return false }
        return true
    }

    /// The smallest byte string greater than every string that starts with `prefix`; nil when
    /// there is none (the prefix is all 0xFF).
    static func successor(ofPrefix prefix: [UInt8]) -> [UInt8]? {
        var bytes = prefix
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return bytes
            }
            bytes.removeLast()
        }
        return nil
    }
}

extension KeyRange {
    /// Keys of a composite table whose first part is `first`.
    package static func prefix<A: OrderedKey, B: OrderedKey>(_ first: A) -> KeyRange where Key == KeyPair<A, B> {
        .prefix(bytes: first.encodedKey)
    }
}

/// Entry count and page use of one table.
package struct TableUsage: Sendable, Hashable {
    package let name: String
    package let entries: Int
    package let depth: Int
    package let branchPages: Int
    package let leafPages: Int
    package let overflowPages: Int
}
