import Foundation
import Larder
import LarderStorage
import LarderTesting
import Testing

/// The byte-level encoders and decoders against simple reference implementations: the JSON
/// writer must produce exactly the bytes its earlier String-building form produced (audit
/// payloads written through it are hashed into the chain), and the in-place readers must agree
/// with the obvious byte-by-byte ones.
@Suite("Codecs")
struct CodecTests {
    // MARK: JSON writer

    /// A JSON value to render both ways.
    indirect enum Node {
        case object([(String, Node)])
        case array([Node])
        case string(String?)
        case signed(Int64)
        case unsigned(UInt64)
        case bool(Bool)
        case double(Double)
    }

    /// Characters chosen to hit every branch of the escaping: plain ASCII, the two escaped
    /// printables, the short control escapes, other controls, DEL, 2-, 3- and 4-byte UTF-8
    /// (the last a surrogate pair in UTF-16), and characters next to the surrogate range.
    static let alphabet: [Unicode.Scalar] = [
        "a", "z", "0", " ", "/", "\"", "\\", "\n", "\r", "\t", "\u{08}", "\u{0C}", "\u{00}", "\u{01}", "\u{1F}",
        "\u{7F}", "\u{80}", "é", "ß", "\u{2028}", "€", "\u{D7FF}", "\u{E000}", "\u{FFFD}", "\u{FFFF}", "😀", "𝄞",
        "\u{10000}", "\u{10FFFF}",
    ]

    static func randomString(_ random: inout SeededGenerator) -> String {
        var scalars = String.UnicodeScalarView()
        let count = Int.random(in: 0...24, using: &random)
        for _ in 0..<count {
            if Bool.random(using: &random) {
                scalars.append(alphabet.randomElement(using: &random)!)
            } else {
                // Any scalar at all (skipping the surrogate code points, which are not scalars).
                var value = UInt32.random(in: 0...0x10_FFFF, using: &random)
                if (0xD800...0xDFFF).contains(value) { value -= 0x800 }
                scalars.append(Unicode.Scalar(value)!)
            }
        }
        return String(scalars)
    }

    static func randomNode(_ random: inout SeededGenerator, depth: Int = 0) -> Node {
        switch Int.random(in: 0...(depth > 2 ? 5 : 7), using: &random) {
        case 0: return .string(Bool.random(using: &random) ? randomString(&random) : nil)
        case 1: return .signed([Int64.min, Int64.max, -1, 0, 9, 10, -10].randomElement(using: &random)!
            &+ (Bool.random(using: &random) ? 0 : Int64.random(in: -1_000_000...1_000_000, using: &random)))
        case 2: return .unsigned([UInt64.max, 0, 9, 10, 1 << 53].randomElement(using: &random)!
            &+ UInt64.random(in: 0...1_000, using: &random))
        case 3: return .bool(Bool.random(using: &random))
        case 4: return .double(Double(bitPattern: random.next()))
        case 5: return .string(randomString(&random))
        case 6:
            return .array((0..<Int.random(in: 0...4, using: &random)).map { _ in randomNode(&random, depth: depth + 1) })
        default:
            return .object((0..<Int.random(in: 0...4, using: &random)).map { _ in
                (randomString(&random), randomNode(&random, depth: depth + 1))
            })
        }
    }

    /// Renders `node` through the writer as the next value (or field, when `key` is given).
    static func write(_ node: Node, key: String? = nil, to json: inout JSONWriter) {
        switch node {
        case .object(let fields):
            let body: (inout JSONWriter) -> Void = { o in for (name, value) in fields { write(value, key: name, to: &o) } }
            if let key { json.object(key, body) } else { json.object(body) }
        case .array(let items):
            let body: (inout JSONWriter) -> Void = { a in for item in items { write(item, to: &a) } }
            if let key { json.array(key, body) } else { json.array(body) }
        case .string(let string): if let key { json.field(key, string) } else { json.value(string) }
        case .signed(let value):
            if let key {
                // Both the plain and the optional integer field, alternately.
                if value & 1 == 0 { json.field(key, value) } else { json.field(key, Optional(value)) }
            } else {
                json.value(value)
            }
        case .unsigned(let value): if let key { json.field(key, value) } else { json.value(value) }
        case .bool(let value): if let key { json.field(key, value) } else { json.value(value) }
        case .double(let value):
            // The writer has a Double field but no Double value: inside arrays, wrap it.
            if let key { json.field(key, value) } else { json.object { o in o.field("d", value) } }
        }
    }

    /// The writer as it was before it wrote bytes: a String built scalar by scalar.
    static func reference(_ node: Node, key: String? = nil, into text: inout String, needsComma: inout Bool) {
        if needsComma { text += "," }
        needsComma = true
        if let key { text += quoted(key) + ":" }
        switch node {
        case .object(let fields):
            text += "{"
            var inner = false
            for (name, value) in fields { reference(value, key: name, into: &text, needsComma: &inner) }
            text += "}"
        case .array(let items):
            text += "["
            var inner = false
            for item in items { reference(item, into: &text, needsComma: &inner) }
            text += "]"
        case .string(let string): text += string.map(quoted) ?? "null"
        case .signed(let value): text += String(value)
        case .unsigned(let value): text += String(value)
        case .bool(let value): text += value ? "true" : "false"
        case .double(let value):
            let rendered = value.isFinite ? String(value) : "null"
            text += key == nil ? "{\"d\":\(rendered)}" : rendered
        }
    }

    static func quoted(_ string: String) -> String {
        var out = "\""
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
        return out + "\""
    }

    @Test func theByteWriterWritesWhatTheStringWriterWrote() {
        let seed = SeededGenerator.seedFromEnvironment(default: 0x15_0B_17E5)
        var random = SeededGenerator(seed: seed)
        for round in 0..<2_000 {
            let nodes = (0..<Int.random(in: 1...3, using: &random)).map { _ in Self.randomNode(&random) }
            var json = JSONWriter()
            var expected = ""
            var needsComma = false
            for node in nodes {
                Self.write(node, to: &json)
                Self.reference(node, into: &expected, needsComma: &needsComma)
            }
            guard json.utf8 == Array(expected.utf8) else {
                Issue.record("seed \(seed) round \(round): \(json.text) != \(expected)")
                return
            }
            #expect(json.text == expected)
        }
    }

    @Test func quotingMatchesTheScalarByScalarForm() {
        let seed = SeededGenerator.seedFromEnvironment(default: 0x0_0_7E5)
        var random = SeededGenerator(seed: seed)
        for round in 0..<5_000 {
            let string = Self.randomString(&random)
            let quoted = JSONWriter.quoted(string)
            guard quoted == Self.quoted(string) else {
                Issue.record("seed \(seed) round \(round): \(Array(string.unicodeScalars)) quoted as \(quoted)")
                return
            }
        }
        #expect(JSONWriter.quoted("a\u{0}\u{1F}\u{08}\"\\😀") == "\"a\\u0000\\u001f\\u0008\\\"\\\\😀\"")
    }

    // MARK: Readers

    /// Random byte strings: mostly ASCII, some valid multi-byte UTF-8, and the kinds of invalid
    /// UTF-8 a validator must refuse (stray continuation bytes, truncated sequences, overlong
    /// forms, encoded surrogates, bytes above F4).
    static func randomBytes(_ random: inout SeededGenerator) -> [UInt8] {
        var bytes: [UInt8] = []
        for _ in 0..<Int.random(in: 0...40, using: &random) {
            switch Int.random(in: 0...9, using: &random) {
            case 0...5: bytes.append(UInt8.random(in: 0...0x7F, using: &random))
            case 6: bytes.append(contentsOf: Array(String(alphabet.randomElement(using: &random)!).utf8))
            case 7: bytes.append(contentsOf: [[0x80], [0xC3], [0xE2, 0x82], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF5, 0x80, 0x80, 0x80],
                                              [0xFF]].randomElement(using: &random)!)
            default: bytes.append(UInt8.random(in: 0...0xFF, using: &random))
            }
        }
        return bytes
    }

    @Test func theASCIIFastPathAgreesWithFullValidation() {
        let seed = SeededGenerator.seedFromEnvironment(default: 0xA5C11)
        var random = SeededGenerator(seed: seed)
        for round in 0..<20_000 {
            let bytes = Self.randomBytes(&random)
            let expected = String(validating: bytes, as: UTF8.self)
            let isASCII = bytes.withUnsafeBytes { UTF8Text.isASCII($0) }
            let valid = bytes.withUnsafeBytes { UTF8Text.isValid($0) }
            let decoded = bytes.withUnsafeBytes { raw in try? UTF8Text.string(raw) }
            guard isASCII == bytes.allSatisfy({ $0 < 0x80 }), valid == (expected != nil), decoded == expected else {
                Issue.record("seed \(seed) round \(round): \(bytes) ascii \(isASCII) valid \(valid) decoded \(String(describing: decoded))")
                return
            }
        }
    }

    @Test func integerReadsAreBigEndianAndBoundsChecked() throws {
        let seed = SeededGenerator.seedFromEnvironment(default: 0x1E7)
        var random = SeededGenerator(seed: seed)
        for round in 0..<2_000 {
            let bytes = (0..<Int.random(in: 0...24, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            func fold(_ slice: ArraySlice<UInt8>) -> UInt64 { slice.reduce(0) { $0 << 8 | UInt64($1) } }
            var reader = ByteReader(bytes)
            var offset = 0
            // A random walk of 1-, 2-, 4- and 8-byte reads, each checked against a byte fold.
            while true {
                let size = [1, 2, 4, 8].randomElement(using: &random)!
                let value: UInt64?
                switch size {
                case 1: value = (try? reader.readUInt8()).map(UInt64.init)
                case 2: value = (try? reader.readUInt16()).map(UInt64.init)
                case 4: value = (try? reader.readUInt32()).map(UInt64.init)
                default: value = try? reader.readUInt64()
                }
                guard offset + size <= bytes.count else {
                    #expect(value == nil, "seed \(seed) round \(round): a read past the end succeeded")
                    #expect(reader.offset == offset, "seed \(seed) round \(round): a failed read moved the reader")
                    break
                }
                #expect(value == fold(bytes[offset..<(offset + size)]), "seed \(seed) round \(round) offset \(offset)")
                offset += size
            }
        }
        var generic = ByteReader([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08])
        #expect(try generic.read(UInt32.self) == 0x0102_0304)
        #expect(throws: LarderError.self) { try generic.readInt64() }
        #expect(try generic.readUInt32() == 0x0506_0708)
        #expect(generic.isAtEnd)
    }

    // MARK: Keys

    /// The key encoding as it was when keys were built in arrays: UTF-8 with 0x00 escaped as
    /// 0x00 0xFF, then a 0x00 0x00 terminator.
    static func referenceKey(_ string: String) -> [UInt8] {
        var out: [UInt8] = []
        for byte in string.utf8 {
            out.append(byte)
            if byte == 0 { out.append(0xFF) }
        }
        return out + [0, 0]
    }

    @Test func keysEncodedOnTheStackMatchTheArrayEncoding() {
        let seed = SeededGenerator.seedFromEnvironment(default: 0x4E75)
        var random = SeededGenerator(seed: seed)
        for round in 0..<2_000 {
            var string = Self.randomString(&random)
            // Some keys past the 512-byte stack buffer, to take the heap path.
            if round % 50 == 0 { string += String(repeating: "k\u{0}", count: Int.random(in: 200...400, using: &random)) }
            let expected = Self.referenceKey(string)
            let viaClosure = string.withEncodedKey { Array($0) }
            guard string.encodedKey == expected, viaClosure == expected else {
                Issue.record("seed \(seed) round \(round): \(string.debugDescription)")
                return
            }
        }
        let pair = KeyPair(UInt64(0x0102_0304_0506_0708), "a\u{0}b")
        #expect(pair.encodedKey == [1, 2, 3, 4, 5, 6, 7, 8] + Self.referenceKey("a\u{0}b"))
    }
}
