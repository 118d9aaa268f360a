import Foundation

/// The JSON Canonicalization Scheme (RFC 8785, "JCS"): one byte sequence for one JSON value,
/// written down in a specification rather than left to a library's current output. Decision
/// fingerprints (docs/FORMAT.md section 6) hash it, and decisions store their results in it.
///
/// ```swift
/// let bytes = try JCS.encode(TransferRequest.transfer(id: "t-1", debit: "a", credit: "b", amount: 5))
/// // {"amount":5,"code":0,"creditAccount":"b","debitAccount":"a","id":"t-1","kind":"single","refs":[]}
/// ```
///
/// What it writes, for a Swift value encoded through `Encodable`:
/// - objects with their members sorted by the UTF-16 code units of their names (RFC 8785
///   section 3.2.3); a name encoded twice keeps its last value; an absent optional is left out
///   (Swift's synthesized `encodeIfPresent`), a `nil` encoded explicitly is `null`;
/// - strings with `"` and `\` escaped, U+0008, U+0009, U+000A, U+000C, U+000D as `\b`, `\t`,
///   `\n`, `\f`, `\r`, every other character below U+0020 as `\u00xx` (lowercase hex), and
///   everything else as UTF-8, unescaped (section 3.2.2.2);
/// - `Double` (and `Float`, widened to `Double`) as ECMAScript's `Number.prototype.toString`
///   (section 3.2.2.3): the shortest digits that read back to the same double, `1e+21` from 10²¹
///   up, `1e-7` below 10⁻⁶, `-0` as `0`; NaN and infinities are refused;
/// - integers (`Int`, `UInt64`, …) as their exact decimal digits. Within ±2⁵³ that is what
///   RFC 8785 writes; beyond it RFC 8785 would round through a double, so that two different
///   amounts could share a fingerprint. Larder writes them exactly instead (the one deviation,
///   documented in docs/FORMAT.md);
/// - `Date` as seconds since 1970 (a `Double`), `Data` as a base64 string, `URL` as its absolute
///   string: the choices Larder's earlier canonical JSON made.
package enum JCS {
    /// The canonical bytes of `value`.
    ///
    /// - throws: VALIDATION_FAILED when the value cannot be written as I-JSON (a NaN or an
    ///   infinity, or a value that encodes nothing at all).
    package static func encode<T: Encodable>(_ value: T) throws(LarderError) -> [UInt8] {
        // The write path's own types write their bytes directly (``JCSDirect``).
        if let direct = value as? any JCSDirect {
            var out: [UInt8] = []
            out.reserveCapacity(256)
            direct.writeJCS(to: &out)
            return out
        }
        return try encodeThroughEncodable(value)
    }

    /// The canonical bytes of `value`, always through `Encodable` (the reference ``JCSDirect``
    /// writers are held to).
    package static func encodeThroughEncodable<T: Encodable>(_ value: T) throws(LarderError) -> [UInt8] {
        let encoder = JCSEncoder(codingPath: [])
        do {
            try encoder.encodeValue(value)
        } catch {
            throw LarderError(.validationFailed, "The value cannot be encoded canonically (RFC 8785): \(error).")
        }
        let node = encoder.node
        guard !node.isUnset else {
            throw LarderError(.validationFailed, "The value cannot be encoded canonically (RFC 8785): \(T.self) encoded nothing.")
        }
        var out: [UInt8] = []
        out.reserveCapacity(256)
        node.write(to: &out)
        return out
    }

    /// Appends `value` as ECMAScript writes a number (RFC 8785 section 3.2.2.3). `value` must be
    /// finite.
    static func appendNumber(_ value: Double, to out: inout [UInt8]) {
        precondition(value.isFinite, "RFC 8785 has no form for \(value)")
        if value == 0 {
            out.append(UInt8(ascii: "0"))
            return
        }
        if value < 0 { out.append(UInt8(ascii: "-")) }
        // Swift's description holds the shortest digits that round-trip (and of those, the
        // closest), as ECMAScript requires; only their layout differs. Take the digits and the
        // decimal exponent from it and lay them out as ECMAScript does.
        let text = Array(value.magnitude.description.utf8)
        var digits: [UInt8] = []
        digits.reserveCapacity(17)
        var pointAt: Int?
        var exponent = 0
        var index = 0
        while index < text.count {
            let byte = text[index]
            if byte == UInt8(ascii: ".") {
                pointAt = digits.count
            } else if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                exponent = Int(String(decoding: text[(index + 1)...], as: UTF8.self))!
                break
            } else {
                digits.append(byte)
            }
            index += 1
        }
        // value = 0.d₁d₂…dₖ × 10ⁿ once leading and trailing zeros are gone.
        var n = (pointAt ?? digits.count) + exponent
        var first = 0
        while first < digits.count - 1 && digits[first] == UInt8(ascii: "0") {
            first += 1
            n -= 1
        }
        var last = digits.count
        while last > first + 1 && digits[last - 1] == UInt8(ascii: "0") { last -= 1 }
        let s = digits[first..<last]
        let k = s.count
        if k <= n && n <= 21 {
            out.append(contentsOf: s)
            out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: n - k))
        } else if 0 < n && n <= 21 {
            out.append(contentsOf: s.prefix(n))
            out.append(UInt8(ascii: "."))
            out.append(contentsOf: s.dropFirst(n))
        } else if -6 < n && n <= 0 {
            out.append(UInt8(ascii: "0"))
            out.append(UInt8(ascii: "."))
            out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: -n))
            out.append(contentsOf: s)
        } else {
            out.append(s[s.startIndex])
            if k > 1 {
                out.append(UInt8(ascii: "."))
                out.append(contentsOf: s.dropFirst())
            }
            out.append(UInt8(ascii: "e"))
            let e = n - 1
            out.append(e < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
            JSONBytes.appendDecimal(UInt64(e.magnitude), negative: false, to: &out)
        }
    }

    /// Whether `a` sorts before `b` by their UTF-16 code units (RFC 8785 section 3.2.3).
    ///
    /// UTF-8 byte order is code point order, which is UTF-16 order except between a character
    /// above U+FFFF (a surrogate pair, 0xD800–0xDBFF first) and one in U+E000–U+FFFF: the bytes
    /// decide until the first difference, and only two non-ASCII characters there need a look at
    /// the code points.
    package static func precedes(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in
                let common = min(x.count, y.count)
                var index = 0
                while index < common && x[index] == y[index] { index += 1 }
                if index == common { return x.count < y.count }
                if x[index] < 0x80 || y[index] < 0x80 { return x[index] < y[index] }
                // Back to the start of the character that differs (continuation bytes are 10xxxxxx).
                var start = index
                while start > 0 && x[start] & 0xC0 == 0x80 { start -= 1 }
                return utf16Rank(scalarAt: start, in: x) < utf16Rank(scalarAt: start, in: y)
            }
        }
    }

    /// A code point's place in UTF-16 code unit order: BMP characters below the surrogates, then
    /// the characters above U+FFFF (whose first unit is a high surrogate), then U+E000–U+FFFF.
    private static func utf16Rank(scalarAt start: Int, in bytes: UnsafeBufferPointer<UInt8>) -> UInt32 {
        let lead = bytes[start]
        var scalar: UInt32
        var length: Int
        switch lead {
        case 0xF0...: (scalar, length) = (UInt32(lead & 0x07), 4)
        case 0xE0...: (scalar, length) = (UInt32(lead & 0x0F), 3)
        case 0xC0...: (scalar, length) = (UInt32(lead & 0x1F), 2)
        default: (scalar, length) = (UInt32(lead), 1)
        }
        for offset in 1..<length { scalar = scalar << 6 | UInt32(bytes[start + offset] & 0x3F) }
        return (0xE000...0xFFFF).contains(scalar) ? scalar + 0x11_0000 : scalar
    }
}

// MARK: The encoder

/// A value as it is being encoded. Objects and arrays are references, so that containers handed
/// out by the encoder fill them in place.
private enum JCSNode {
    case unset
    case null
    case bool(Bool)
    case integer(Int64)
    case unsignedInteger(UInt64)
    case number(Double)
    case string(String)
    case object(JCSObject)
    case array(JCSArray)
    /// A value a child encoder writes later (`superEncoder`).
    case deferred(JCSEncoder)

    var isUnset: Bool {
        if case .unset = self { return true }
        if case .deferred(let encoder) = self { return encoder.node.isUnset }
        return false
    }

    func write(to out: inout [UInt8]) {
        switch self {
        case .unset: JSONBytes.append("{}", to: &out)
        case .null: JSONBytes.append("null", to: &out)
        case .bool(let value): JSONBytes.append(value ? "true" : "false", to: &out)
        case .integer(let value): JSONBytes.appendDecimal(value.magnitude, negative: value < 0, to: &out)
        case .unsignedInteger(let value): JSONBytes.appendDecimal(value, negative: false, to: &out)
        case .number(let value): JCS.appendNumber(value, to: &out)
        case .string(let value): JSONBytes.appendQuoted(value, escapes: .canonical, to: &out)
        case .object(let object): object.write(to: &out)
        case .array(let array):
            out.append(UInt8(ascii: "["))
            for (index, item) in array.items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                item.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .deferred(let encoder): encoder.node.write(to: &out)
        }
    }
}

private final class JCSObject {
    var names: [String] = []
    var values: [JCSNode] = []

    func set(_ name: String, _ value: JCSNode) {
        names.append(name)
        values.append(value)
    }

    func write(to out: inout [UInt8]) {
        // A stable sort keeps a repeated name's entries in the order written; the last one wins.
        let order = names.indices.sorted { a, b in
            JCS.precedes(names[a], names[b]) || (names[a] == names[b] && a < b)
        }
        out.append(UInt8(ascii: "{"))
        var first = true
        for (position, index) in order.enumerated() {
            if position + 1 < order.count, names[order[position + 1]] == names[index] { continue }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            JSONBytes.appendQuoted(names[index], escapes: .canonical, to: &out)
            out.append(UInt8(ascii: ":"))
            values[index].write(to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }
}

private final class JCSArray {
    var items: [JCSNode] = []
}

private final class JCSEncoder: Encoder {
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    var node: JCSNode = .unset

    init(codingPath: [any CodingKey]) {
        self.codingPath = codingPath
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let object: JCSObject
        if case .object(let existing) = node {
            object = existing
        } else {
            object = JCSObject()
            node = .object(object)
        }
        return KeyedEncodingContainer(JCSKeyedContainer<Key>(object: object, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let array: JCSArray
        if case .array(let existing) = node {
            array = existing
        } else {
            array = JCSArray()
            node = .array(array)
        }
        return JCSUnkeyedContainer(array: array, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { JCSSingleValueContainer(encoder: self) }

    /// Encodes `value` into this encoder's node, with the types Foundation's encoders treat
    /// specially written as Larder's earlier canonical JSON wrote them.
    func encodeValue<T: Encodable>(_ value: T) throws {
        node = try Self.node(for: value, codingPath: codingPath)
    }

    static func node<T: Encodable>(for value: T, codingPath: [any CodingKey]) throws -> JCSNode {
        // Metadata comparisons, not dynamic casts: this runs for every nested value.
        if T.self == String.self { return .string(value as! String) }
        if T.self == Date.self { return try number((value as! Date).timeIntervalSince1970, codingPath: codingPath) }
        if T.self == Data.self { return .string((value as! Data).base64EncodedString()) }
        if T.self == URL.self { return .string((value as! URL).absoluteString) }
        let child = JCSEncoder(codingPath: codingPath)
        try value.encode(to: child)
        return child.node
    }

    static func number(_ value: Double, codingPath: [any CodingKey]) throws -> JCSNode {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, EncodingError.Context(codingPath: codingPath,
                                                                          debugDescription: "RFC 8785 has no form for \(value)"))
        }
        return .number(value)
    }
}

private struct JCSKeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let object: JCSObject
    let codingPath: [any CodingKey]

    func encodeNil(forKey key: Key) { object.set(key.stringValue, .null) }
    func encode(_ value: Bool, forKey key: Key) { object.set(key.stringValue, .bool(value)) }
    func encode(_ value: String, forKey key: Key) { object.set(key.stringValue, .string(value)) }
    func encode(_ value: Double, forKey key: Key) throws { object.set(key.stringValue, try JCSEncoder.number(value, codingPath: codingPath + [key])) }
    func encode(_ value: Float, forKey key: Key) throws { try encode(Double(value), forKey: key) }
    func encode(_ value: Int, forKey key: Key) { object.set(key.stringValue, .integer(Int64(value))) }
    func encode(_ value: Int8, forKey key: Key) { object.set(key.stringValue, .integer(Int64(value))) }
    func encode(_ value: Int16, forKey key: Key) { object.set(key.stringValue, .integer(Int64(value))) }
    func encode(_ value: Int32, forKey key: Key) { object.set(key.stringValue, .integer(Int64(value))) }
    func encode(_ value: Int64, forKey key: Key) { object.set(key.stringValue, .integer(value)) }
    func encode(_ value: UInt, forKey key: Key) { object.set(key.stringValue, .unsignedInteger(UInt64(value))) }
    func encode(_ value: UInt8, forKey key: Key) { object.set(key.stringValue, .unsignedInteger(UInt64(value))) }
    func encode(_ value: UInt16, forKey key: Key) { object.set(key.stringValue, .unsignedInteger(UInt64(value))) }
    func encode(_ value: UInt32, forKey key: Key) { object.set(key.stringValue, .unsignedInteger(UInt64(value))) }
    func encode(_ value: UInt64, forKey key: Key) { object.set(key.stringValue, .unsignedInteger(value)) }

    func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        object.set(key.stringValue, try JCSEncoder.node(for: value, codingPath: codingPath + [key]))
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let nested = JCSObject()
        object.set(key.stringValue, .object(nested))
        return KeyedEncodingContainer(JCSKeyedContainer<NestedKey>(object: nested, codingPath: codingPath + [key]))
    }

    func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested = JCSArray()
        object.set(key.stringValue, .array(nested))
        return JCSUnkeyedContainer(array: nested, codingPath: codingPath + [key])
    }

    func superEncoder() -> any Encoder { superEncoder(named: "super") }
    func superEncoder(forKey key: Key) -> any Encoder { superEncoder(named: key.stringValue) }

    private func superEncoder(named name: String) -> any Encoder {
        let encoder = JCSEncoder(codingPath: codingPath + [JCSIndexKey(stringValue: name)])
        object.set(name, .deferred(encoder))
        return encoder
    }
}

private struct JCSUnkeyedContainer: UnkeyedEncodingContainer {
    let array: JCSArray
    let codingPath: [any CodingKey]
    var count: Int { array.items.count }

    private var nextPath: [any CodingKey] { codingPath + [JCSIndexKey(intValue: array.items.count)] }

    func encodeNil() { array.items.append(.null) }
    func encode(_ value: Bool) { array.items.append(.bool(value)) }
    func encode(_ value: String) { array.items.append(.string(value)) }
    func encode(_ value: Double) throws { array.items.append(try JCSEncoder.number(value, codingPath: nextPath)) }
    func encode(_ value: Float) throws { try encode(Double(value)) }
    func encode(_ value: Int) { array.items.append(.integer(Int64(value))) }
    func encode(_ value: Int8) { array.items.append(.integer(Int64(value))) }
    func encode(_ value: Int16) { array.items.append(.integer(Int64(value))) }
    func encode(_ value: Int32) { array.items.append(.integer(Int64(value))) }
    func encode(_ value: Int64) { array.items.append(.integer(value)) }
    func encode(_ value: UInt) { array.items.append(.unsignedInteger(UInt64(value))) }
    func encode(_ value: UInt8) { array.items.append(.unsignedInteger(UInt64(value))) }
    func encode(_ value: UInt16) { array.items.append(.unsignedInteger(UInt64(value))) }
    func encode(_ value: UInt32) { array.items.append(.unsignedInteger(UInt64(value))) }
    func encode(_ value: UInt64) { array.items.append(.unsignedInteger(value)) }

    func encode<T: Encodable>(_ value: T) throws {
        array.items.append(try JCSEncoder.node(for: value, codingPath: nextPath))
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let nested = JCSObject()
        let path = nextPath
        array.items.append(.object(nested))
        return KeyedEncodingContainer(JCSKeyedContainer<NestedKey>(object: nested, codingPath: path))
    }

    func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let nested = JCSArray()
        let path = nextPath
        array.items.append(.array(nested))
        return JCSUnkeyedContainer(array: nested, codingPath: path)
    }

    func superEncoder() -> any Encoder {
        let encoder = JCSEncoder(codingPath: nextPath)
        array.items.append(.deferred(encoder))
        return encoder
    }
}

private struct JCSSingleValueContainer: SingleValueEncodingContainer {
    let encoder: JCSEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    func encodeNil() { encoder.node = .null }
    func encode(_ value: Bool) { encoder.node = .bool(value) }
    func encode(_ value: String) { encoder.node = .string(value) }
    func encode(_ value: Double) throws { encoder.node = try JCSEncoder.number(value, codingPath: codingPath) }
    func encode(_ value: Float) throws { try encode(Double(value)) }
    func encode(_ value: Int) { encoder.node = .integer(Int64(value)) }
    func encode(_ value: Int8) { encoder.node = .integer(Int64(value)) }
    func encode(_ value: Int16) { encoder.node = .integer(Int64(value)) }
    func encode(_ value: Int32) { encoder.node = .integer(Int64(value)) }
    func encode(_ value: Int64) { encoder.node = .integer(value) }
    func encode(_ value: UInt) { encoder.node = .unsignedInteger(UInt64(value)) }
    func encode(_ value: UInt8) { encoder.node = .unsignedInteger(UInt64(value)) }
    func encode(_ value: UInt16) { encoder.node = .unsignedInteger(UInt64(value)) }
    func encode(_ value: UInt32) { encoder.node = .unsignedInteger(UInt64(value)) }
    func encode(_ value: UInt64) { encoder.node = .unsignedInteger(value) }
    func encode<T: Encodable>(_ value: T) throws { try encoder.encodeValue(value) }
}

/// The coding key of an array element or a super encoder (for error paths only).
private struct JCSIndexKey: CodingKey {
    let stringValue: String
    let intValue: Int?

    init(stringValue: String) {
        self.stringValue = stringValue
        intValue = nil
    }

    init(intValue: Int) {
        stringValue = String(intValue)
        self.intValue = intValue
    }
}
