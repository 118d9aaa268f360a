/// A tiny, deterministic JSON writer: fields come out in the order they are written, numbers
/// and strings always render the same way. Used where bytes must be identical wherever they are
/// produced (the error body, the audit export, audit payloads), which `JSONEncoder` does not
/// promise.
///
/// ```swift
/// var json = JSONWriter()
/// json.object { o in
///     o.field("seq", 42)
///     o.array("refs") { a in a.value("order:4411") }
/// }
/// json.text // {"seq":42,"refs":["order:4411"]}
/// ```
///
/// It writes UTF-8 bytes: runs of characters that need no escaping are copied as they are, and
/// integers are written as digits, without building a `String` per value.
public struct JSONWriter: Sendable {
    /// The JSON written so far, as UTF-8.
    public private(set) var utf8: [UInt8] = []
    private var needsComma = false

    public init() {}

    /// A writer whose buffer starts with room for `capacity` bytes.
    public init(capacity: Int) {
        utf8.reserveCapacity(capacity)
    }

    /// The JSON written so far.
    public var text: String { String(decoding: utf8, as: UTF8.self) }

    // MARK: Values inside an array (or at the top level)

    public mutating func object(_ body: (inout JSONWriter) -> Void) {
        separate()
        utf8.append(UInt8(ascii: "{"))
        let outer = needsComma
        needsComma = false
        body(&self)
        utf8.append(UInt8(ascii: "}"))
        needsComma = outer
    }

    public mutating func array(_ body: (inout JSONWriter) -> Void) {
        separate()
        utf8.append(UInt8(ascii: "["))
        let outer = needsComma
        needsComma = false
        body(&self)
        utf8.append(UInt8(ascii: "]"))
        needsComma = outer
    }

    public mutating func value(_ string: String?) {
        separate()
        if let string { JSONBytes.appendQuoted(string, to: &utf8) } else { JSONBytes.append("null", to: &utf8) }
    }

    public mutating func value(_ bool: Bool) {
        separate()
        JSONBytes.append(bool ? "true" : "false", to: &utf8)
    }

    public mutating func value<I: BinaryInteger>(_ integer: I) {
        separate()
        JSONBytes.appendInteger(integer, to: &utf8)
    }

    /// Appends already-rendered JSON as one value. The caller vouches that it is valid JSON.
    public mutating func rawValue(_ json: String) {
        separate()
        utf8.append(contentsOf: json.utf8)
    }

    /// Ends a line of newline-delimited JSON (NDJSON): appends a line feed, and the next value
    /// starts a new line instead of following a comma.
    ///
    /// ```swift
    /// var json = JSONWriter()
    /// json.object { o in o.field("seq", 1) }
    /// json.newline()
    /// json.object { o in o.field("seq", 2) }
    /// json.newline()
    /// json.text // {"seq":1}\n{"seq":2}\n
    /// ```
    public mutating func newline() {
        utf8.append(UInt8(ascii: "\n"))
        needsComma = false
    }

    // MARK: Fields inside an object

    public mutating func field(_ key: String, _ string: String?) {
        self.key(key)
        if let string { JSONBytes.appendQuoted(string, to: &utf8) } else { JSONBytes.append("null", to: &utf8) }
    }

    public mutating func field(_ key: String, _ bool: Bool) {
        self.key(key)
        JSONBytes.append(bool ? "true" : "false", to: &utf8)
    }

    public mutating func field<I: BinaryInteger>(_ key: String, _ integer: I) {
        self.key(key)
        JSONBytes.appendInteger(integer, to: &utf8)
    }

    public mutating func field<I: BinaryInteger>(_ key: String, _ integer: I?) {
        self.key(key)
        if let integer { JSONBytes.appendInteger(integer, to: &utf8) } else { JSONBytes.append("null", to: &utf8) }
    }

    public mutating func field(_ key: String, _ double: Double) {
        self.key(key)
        if double.isFinite { utf8.append(contentsOf: String(double).utf8) } else { JSONBytes.append("null", to: &utf8) }
    }

    public mutating func rawField(_ key: String, json: String) {
        self.key(key)
        utf8.append(contentsOf: json.utf8)
    }

    public mutating func object(_ key: String, _ body: (inout JSONWriter) -> Void) {
        self.key(key)
        needsComma = false
        object(body)
        needsComma = true
    }

    public mutating func array(_ key: String, _ body: (inout JSONWriter) -> Void) {
        self.key(key)
        needsComma = false
        array(body)
        needsComma = true
    }

    // MARK: Fields from stored bytes (record views render without building strings)

    /// A string field from UTF-8 bytes the caller has validated.
    mutating func field(_ key: String, utf8 bytes: UnsafeRawBufferPointer) {
        self.key(key)
        JSONBytes.appendQuoted(bytes.assumingMemoryBound(to: UInt8.self), to: &utf8)
    }

    /// A field whose value is already-rendered JSON, as UTF-8 bytes the caller vouches for.
    mutating func rawField(_ key: String, utf8 bytes: UnsafeRawBufferPointer) {
        self.key(key)
        utf8.append(contentsOf: bytes)
    }

    /// A string field of lowercase hexadecimal, two digits per byte.
    mutating func hexField(_ key: String, _ bytes: UnsafeRawBufferPointer) {
        self.key(key)
        JSONBytes.appendQuotedHex(bytes, to: &utf8)
    }

    /// A string field of ASCII bytes made by `write` (at most `countMax` of them), e.g. a timestamp.
    mutating func asciiField(_ key: String, countMax: Int, _ write: (UnsafeMutablePointer<UInt8>) -> Int) {
        self.key(key)
        utf8.append(UInt8(ascii: "\""))
        JSONBytes.append(countMax: countMax, to: &utf8, write)
        utf8.append(UInt8(ascii: "\""))
    }

    // MARK: Helpers

    private mutating func key(_ key: String) {
        separate()
        JSONBytes.appendQuoted(key, to: &utf8)
        utf8.append(UInt8(ascii: ":"))
    }

    @inline(__always)
    private mutating func separate() {
        if needsComma { utf8.append(UInt8(ascii: ",")) }
        needsComma = true
    }

    /// Quotes a string by RFC 8259: `"` and `\` escaped, control characters as `\n`, `\t`, `\r`
    /// or `\u00XX`; everything else passes through as UTF-8.
    public static func quoted(_ string: String) -> String {
        var out: [UInt8] = []
        JSONBytes.appendQuoted(string, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// The byte-level pieces of JSON text shared by ``JSONWriter`` and the canonical (RFC 8785)
/// encoder: quoting, integers, hex.
enum JSONBytes {
    /// How control characters other than `\n`, `\r` and `\t` are escaped.
    enum ControlEscapes {
        /// `\u00XX` for every other one: ``JSONWriter``'s form since its first version (audit
        /// payloads are hashed, so it never changes).
        case unicode
        /// `\b` and `\f` for U+0008 and U+000C, `\u00XX` for the rest: RFC 8785 section 3.2.2.2.
        case canonical
    }

    @inline(__always)
    static func append(_ literal: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    static func appendQuoted(_ string: String, escapes: ControlEscapes = .unicode, to out: inout [UInt8]) {
        var string = string
        string.withUTF8 { appendQuoted($0, escapes: escapes, to: &out) }
    }

    /// `"`, the bytes with `"`, `\` and U+0000–U+001F escaped, `"`. Every other byte, including
    /// each byte of a multi-byte character, is copied as it is: the same text as escaping scalar
    /// by scalar, because in UTF-8 only ASCII bytes are below 0x80.
    static func appendQuoted(_ bytes: UnsafeBufferPointer<UInt8>, escapes: ControlEscapes = .unicode, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var runStart = 0
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            if byte >= 0x20 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                index += 1
                continue
            }
            if runStart < index { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index])) }
            appendEscape(byte, escapes: escapes, to: &out)
            index += 1
            runStart = index
        }
        if runStart < count { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<count])) }
        out.append(UInt8(ascii: "\""))
    }

    private static func appendEscape(_ byte: UInt8, escapes: ControlEscapes, to out: inout [UInt8]) {
        let short: UInt8? = switch byte {
        case UInt8(ascii: "\""): UInt8(ascii: "\"")
        case UInt8(ascii: "\\"): UInt8(ascii: "\\")
        case 0x0A: UInt8(ascii: "n")
        case 0x0D: UInt8(ascii: "r")
        case 0x09: UInt8(ascii: "t")
        case 0x08 where escapes == .canonical: UInt8(ascii: "b")
        case 0x0C where escapes == .canonical: UInt8(ascii: "f")
        default: nil
        }
        out.append(UInt8(ascii: "\\"))
        if let short {
            out.append(short)
            return
        }
        let digits: StaticString = "0123456789abcdef"
        out.append(UInt8(ascii: "u"))
        out.append(UInt8(ascii: "0"))
        out.append(UInt8(ascii: "0"))
        out.append(digits.utf8Start[Int(byte >> 4)])
        out.append(digits.utf8Start[Int(byte & 0x0f)])
    }

    /// Decimal digits of `value`, as `String(value)` writes them.
    static func appendInteger<I: BinaryInteger>(_ value: I, to out: inout [UInt8]) {
        if let unsigned = UInt64(exactly: value) {
            appendDecimal(unsigned, negative: false, to: &out)
        } else if let signed = Int64(exactly: value) {
            appendDecimal(signed.magnitude, negative: true, to: &out)
        } else {
            out.append(contentsOf: String(value).utf8)
        }
    }

    @inline(__always)
    static func appendDecimal(_ magnitude: UInt64, negative: Bool, to out: inout [UInt8]) {
        if magnitude < 10 && !negative {
            out.append(UInt8(ascii: "0") + UInt8(magnitude))
            return
        }
        // 20 digits hold UInt64.max; one more for the sign. Written backwards, on the stack.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 21) { buffer in
            var index = 21
            var rest = magnitude
            repeat {
                index -= 1
                buffer[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            if negative {
                index -= 1
                buffer[index] = UInt8(ascii: "-")
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[index..<21]))
        }
    }

    /// `"`, two lowercase hex digits per byte, `"`.
    static func appendQuotedHex(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        append(countMax: bytes.count * 2, to: &out) { buffer in
            HexDigits.write(bytes, to: buffer)
            return bytes.count * 2
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Appends up to `countMax` bytes that `write` puts at the start of the buffer it is given,
    /// returning how many it wrote (no intermediate array or string).
    @inline(__always)
    static func append(countMax: Int, to out: inout [UInt8], _ write: (UnsafeMutablePointer<UInt8>) -> Int) {
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: countMax))
        let written = out.withUnsafeMutableBufferPointer { buffer in write(buffer.baseAddress! + start) }
        precondition(written >= 0 && written <= countMax, "wrote \(written) bytes into room for \(countMax)")
        out.removeLast(countMax - written)
    }
}
