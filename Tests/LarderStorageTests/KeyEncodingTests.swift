import LarderStorage
import LarderTesting
import Testing

/// Every key encoding must round-trip and sort exactly like the values it encodes, alone and
/// inside composite keys, both in memory and in LMDB's own order.
@Suite("Key encodings")
struct KeyEncodingTests {
    static let seed = SeededGenerator.seedFromEnvironment(default: 0x1A4D_E12)

    /// Checks round trip and order for a list of values, given the value order.
    func checkOrdering<K: OrderedKey>(_ values: [K], by areInIncreasingOrder: (K, K) -> Bool,
                                      sourceLocation: SourceLocation = #_sourceLocation) throws {
        for value in values {
            let decoded = try K.decodeKey(value.encodedKey)
            #expect(decoded == value, "round trip of \(value) (seed \(Self.seed))", sourceLocation: sourceLocation)
        }
        let byValue = values.sorted(by: areInIncreasingOrder).map(\.encodedKey)
        let byBytes = values.map(\.encodedKey).sorted { $0.lexicographicallyPrecedes($1) }
        #expect(byValue == byBytes, "encoding order differs from value order (seed \(Self.seed))", sourceLocation: sourceLocation)
    }

    @Test func unsignedIntegers() throws {
        var random = SeededGenerator(seed: Self.seed)
        let values64 = (0..<2_000).map { _ in UInt64.random(in: 0...UInt64.max, using: &random) } + [0, 1, .max, 255, 256]
        try checkOrdering(values64, by: <)
        let values32 = (0..<2_000).map { _ in UInt32.random(in: 0...UInt32.max, using: &random) } + [0, .max]
        try checkOrdering(values32, by: <)
        try checkOrdering((0...255).map { UInt8($0) }, by: <)
        #expect(UInt64(0x0102_0304_0506_0708).encodedKey == [1, 2, 3, 4, 5, 6, 7, 8])
    }

    @Test func signedIntegers() throws {
        var random = SeededGenerator(seed: Self.seed &+ 1)
        let values = (0..<2_000).map { _ in Int64.random(in: Int64.min...Int64.max, using: &random) } + [.min, -1, 0, 1, .max]
        try checkOrdering(values, by: <)
    }

    @Test func strings() throws {
        var random = SeededGenerator(seed: Self.seed &+ 2)
        // Include NUL, 0xFF-adjacent code points, prefixes of each other and non-ASCII text.
        let alphabet: [Unicode.Scalar] = ["\u{0}", "\u{1}", "a", "b", "z", "~", "\u{7F}", "é", "ÿ", "€", "𝄞"]
        var values: [String] = ["", "a", "a\u{0}", "a\u{0}a", "ab", "b"]
        for _ in 0..<2_000 {
            let length = Int.random(in: 0...6, using: &random)
            var string = String.UnicodeScalarView()
            for _ in 0..<length { string.append(alphabet.randomElement(using: &random)!) }
            values.append(String(string))
        }
        // Strings sort by UTF-8 bytes, which is Unicode code point order.
        try checkOrdering(values) { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    @Test func fixedWidthIdentifiers() throws {
        var random = SeededGenerator(seed: Self.seed &+ 3)
        let values = (0..<1_000).map { _ in ID16(high: random.next(), low: random.next()) }
        try checkOrdering(values, by: <)
        #expect(ID16([1, 2, 3]) == nil)
    }

    @Test func compositeKeys() throws {
        var random = SeededGenerator(seed: Self.seed &+ 4)
        let names = ["", "a", "a\u{0}", "ab", "order", "order-1", "pack"]
        let pairs = (0..<2_000).map { _ in
            KeyPair(names.randomElement(using: &random)!, UInt64.random(in: 0...20, using: &random))
        }
        try checkOrdering(pairs) { lhs, rhs in
            let l = Array(lhs.first.utf8), r = Array(rhs.first.utf8)
            return l == r ? lhs.second < rhs.second : l.lexicographicallyPrecedes(r)
        }
        let nested = (0..<1_000).map { _ in
            KeyPair(Int64.random(in: -5...5, using: &random), KeyPair(names.randomElement(using: &random)!, UInt8.random(in: 0...3, using: &random)))
        }
        try checkOrdering(nested) { lhs, rhs in
            if lhs.first != rhs.first { return lhs.first < rhs.first }
            let l = Array(lhs.second.first.utf8), r = Array(rhs.second.first.utf8)
            return l == r ? lhs.second.second < rhs.second.second : l.lexicographicallyPrecedes(r)
        }
    }

    @Test func malformedKeysAreErrorsNotCrashes() {
        #expect(throws: StorageError.self) { try UInt64.decodeKey([1, 2, 3]) }
        #expect(throws: StorageError.self) { try String.decodeKey([0x61, 0x00]) }
        #expect(throws: StorageError.self) { try String.decodeKey([0x61, 0x00, 0x07]) }
        #expect(throws: StorageError.self) { try UInt32.decodeKey([0, 0, 0, 1, 9]) }
    }

    /// LMDB's own byte order agrees with the encodings: a forward scan returns values in order.
    @Test func lmdbOrderMatchesValueOrder() throws {
        let directory = try TemporaryDirectory()
        let environment = try Environment.open(at: directory.path("env"), tables: ["pairs"])
        defer { environment.close() }
        let table = try environment.table("pairs", key: KeyPair<Int64, String>.self, value: Empty.self)
        var random = SeededGenerator(seed: Self.seed &+ 5)
        var keys = Set<KeyPair<Int64, String>>()
        while keys.count < 500 {
            keys.insert(KeyPair(Int64.random(in: -1_000...1_000, using: &random), ["x", "x\u{0}", "y", ""].randomElement(using: &random)!))
        }
        try environment.write { txn in
            for key in keys { try txn.put(table, key, Empty()) }
        }
        let scanned = try environment.read { txn in try txn.scan(table, limit: 10_000).map(\.key) }
        let expected = keys.sorted { lhs, rhs in
            lhs.first != rhs.first ? lhs.first < rhs.first : Array(lhs.second.utf8).lexicographicallyPrecedes(Array(rhs.second.utf8))
        }
        #expect(scanned == expected, "seed \(Self.seed)")
    }
}
