/// Unpadded base64url (RFC 4648 §5): the form token secrets are shown and presented in, safe in
/// headers, URLs and shells without quoting.
enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index + 3 <= bytes.count {
            let value = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            for shift in [18, 12, 6, 0] { out.append(alphabet[Int((value >> UInt32(shift)) & 63)]) }
            index += 3
        }
        let rest = bytes.count - index
        if rest > 0 {
            var value = UInt32(bytes[index]) << 16
            if rest == 2 { value |= UInt32(bytes[index + 1]) << 8 }
            let shifts = rest == 1 ? [18, 12] : [18, 12, 6]
            for shift in shifts { out.append(alphabet[Int((value >> UInt32(shift)) & 63)]) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes unpadded base64url; nil for any other character, padding, an impossible length or
    /// a non-canonical spelling.
    ///
    /// A final group of 2 or 3 characters carries 4 or 2 bits that no byte uses; RFC 4648 §3.5
    /// lets decoders reject them when they are not zero, and we must: otherwise 4 (or 16)
    /// spellings of one secret would authenticate, and a secret seen in a log could be presented
    /// in a form no filter for the logged spelling would catch.
    static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt32] = []
        values.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): values.append(UInt32(byte - UInt8(ascii: "A")))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): values.append(UInt32(byte - UInt8(ascii: "a")) + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(UInt32(byte - UInt8(ascii: "0")) + 52)
            case UInt8(ascii: "-"): values.append(62)
            case UInt8(ascii: "_"): values.append(63)
            default: return nil
            }
        }
        guard values.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        var index = 0
        while index < values.count {
            let chunk = values[index..<min(index + 4, values.count)]
            var value: UInt32 = 0
            for (offset, digit) in chunk.enumerated() { value |= digit << UInt32(18 - 6 * offset) }
            let produced = chunk.count - 1
            // Bits 23...(24 - 6 × characters) hold the group; bytes take the top 8 × produced.
            let unusedBits = UInt32(chunk.count * 6 - produced * 8)
            let unusedMask = ((UInt32(1) << unusedBits) - 1) << UInt32(24 - chunk.count * 6)
            guard value & unusedMask == 0 else { return nil }
            for offset in 0..<produced { out.append(UInt8((value >> UInt32(16 - 8 * offset)) & 0xff)) }
            index += 4
        }
        return out
    }
}
