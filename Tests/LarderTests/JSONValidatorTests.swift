import Foundation
import Larder
import LarderTesting
import Testing

/// The allocation-free validator agrees with Foundation's parser on what is one JSON object.
@Suite("JSON validator")
struct JSONValidatorTests {
    @Test(arguments: [
        ("{}", true), (" { } \n", true), (#"{"a":1}"#, true), (#"{"a":[1,2.5e-3,-0,true,false,null,{"b":"\u00e9\n"}]}"#, true),
        (#"{"a":"x\"y\\z\/"}"#, true), (#"{"é":"ünïcode 𝄞"}"#, true),
        ("", false), ("[]", false), ("1", false), (#""s""#, false), ("{", false), ("}", false), (#"{"a"}"#, false),
        (#"{"a":}"#, false), (#"{"a":1,}"#, false), (#"{a:1}"#, false), (#"{"a":01}"#, false), (#"{"a":1.}"#, false),
        (#"{"a":.5}"#, false), (#"{"a":"\x"}"#, false), (#"{"a":"\u12"}"#, false), ("{\"a\":\"tab\there\"}", false),
        (#"{"a":tru}"#, false), (#"{} {}"#, false), (#"{"a":1}x"#, false), (#"{"a":+1}"#, false),
    ] as [(String, Bool)])
    func cases(text: String, isObject: Bool) {
        #expect(JSONValidator.isObject(text) == isObject, "\(text)")
    }

    @Test func deepNestingIsBounded() {
        let deep = String(repeating: "{\"a\":", count: 100) + "1" + String(repeating: "}", count: 100)
        #expect(!JSONValidator.isObject(deep))
        let fine = String(repeating: "{\"a\":", count: 10) + "1" + String(repeating: "}", count: 10)
        #expect(JSONValidator.isObject(fine))
    }

    /// Random mutations of valid objects: the validator and Foundation agree (Foundation also
    /// accepts some things RFC 8259 does not, so only "validator says yes ⇒ Foundation says yes"
    /// is checked, plus agreement on the unmutated objects).
    @Test func agreesWithFoundation() throws {
        let seed = SeededGenerator.seedFromEnvironment(default: 99)
        var random = SeededGenerator(seed: seed)
        let samples = [#"{"a":1,"b":[true,null,"x"],"c":{"d":-2.5E+3}}"#, #"{"incident_id":"inc-1","amount_cents":500}"#]
        let alphabet = Array(#"{}[]:,"\ -.0123456789eEtrufalsn"#.utf8)
        for _ in 0..<3_000 {
            var bytes = Array(samples.randomElement(using: &random)!.utf8)
            for _ in 0..<Int.random(in: 0...2, using: &random) {
                let index = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes[index] = alphabet.randomElement(using: &random)!
                case 1: bytes.remove(at: index)
                default: bytes.insert(alphabet.randomElement(using: &random)!, at: index)
                }
            }
            let text = String(decoding: bytes, as: UTF8.self)
            if JSONValidator.isObject(text) {
                let parsed = try? JSONSerialization.jsonObject(with: Data(text.utf8))
                #expect(parsed is [String: Any], "seed \(seed): validator accepted \(text)")
            }
        }
        for sample in samples { #expect(JSONValidator.isObject(sample)) }
    }
}
