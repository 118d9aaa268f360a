/// A tiny, deterministic JSON writer: fields come out in the order they are written, numbers
/// and strings always render the same way. Used where bytes must be identical wherever they are
/// produced (the error body, the audit export), which `JSONEncoder` does not promise.
///
/// ```swift
/// var json = JSONWriter()
/// json.object { o in
///     o.field("seq", 42)
///     o.array("refs") { a in a.value("order:4411") }
/// }
/// json.text // {"seq":42,"refs":["order:4411"]}
/// ```
public struct JSONWriter: Sendable {
    /// The JSON written so far.
    public private(set) var text: String = ""
    private var needsComma = false

    public init() {}

    // MARK: Values inside an array (or at the top level)

    public mutating func object(_ body: (inout JSONWriter) -> Void) {
        separate()
        text += "{"
        let outer = needsComma
        needsComma = false
        body(&self)
        text += "}"
        needsComma = outer
    }

    public mutating func array(_ body: (inout JSONWriter) -> Void) {
        separate()
        text += "["
        let outer = needsComma
        needsComma = false
        body(&self)
        text += "]"
        needsComma = outer
    }

    public mutating func value(_ string: String?) {
        separate()
        if let string { Self.appendQuoted(string, to: &text) } else { text += "null" }
    }

    public mutating func value(_ bool: Bool) {
        separate()
        text += bool ? "true" : "false"
    }

    public mutating func value<I: BinaryInteger>(_ integer: I) {
        separate()
        text += String(integer)
    }

    /// Appends already-rendered JSON as one value. The caller vouches that it is valid JSON.
    public mutating func rawValue(_ json: String) {
        separate()
        text += json
    }

    // MARK: Fields inside an object

    public mutating func field(_ key: String, _ string: String?) {
        self.key(key)
        if let string { Self.appendQuoted(string, to: &text) } else { text += "null" }
    }

    public mutating func field(_ key: String, _ bool: Bool) {
        self.key(key)
        text += bool ? "true" : "false"
    }

    public mutating func field<I: BinaryInteger>(_ key: String, _ integer: I) {
        self.key(key)
        text += String(integer)
    }

    public mutating func field<I: BinaryInteger>(_ key: String, _ integer: I?) {
        self.key(key)
        if let integer { text += String(integer) } else { text += "null" }
    }

    public mutating func field(_ key: String, _ double: Double) {
        self.key(key)
        text += double.isFinite ? String(double) : "null"
    }

    public mutating func rawField(_ key: String, json: String) {
        self.key(key)
        text += json
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

    // MARK: Helpers

    private mutating func key(_ key: String) {
        separate()
        Self.appendQuoted(key, to: &text)
        text += ":"
    }

    private mutating func separate() {
        if needsComma { text += "," }
        needsComma = true
    }

    /// Quotes a string by RFC 8259: `"` and `\` escaped, control characters as `\n`, `\t`, `\r`
    /// or `\u00XX`; everything else passes through as UTF-8.
    public static func quoted(_ string: String) -> String {
        var out = ""
        appendQuoted(string, to: &out)
        return out
    }

    static func appendQuoted(_ string: String, to out: inout String) {
        out += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
