import Foundation
import Larder

/// Parsers for request text that accept exactly what docs/admin-openapi.yaml describes.
///
/// Swift's `Int("+5")` and `UInt64("18446744073709551615")`, and a date parser that checks only
/// that the day is at most 31, accept more than the document: a client that relies on the looser
/// form breaks against any other implementation of it, and the recorded filters stop being the
/// document's values. So numbers are ASCII digits only, and a date must exist.
enum StrictText {
    /// Largest sequence number the document allows (`format: int64`).
    static let seqMax = UInt64(Int64.max)

    /// A non-negative decimal integer of ASCII digits (no sign, no spaces) up to `max`; nil otherwise.
    static func unsigned(_ text: String, max: UInt64) -> UInt64? {
        // 19 digits hold every int64; more can only be out of range (or leading zeros, which no
        // generator of the document's values writes).
        guard !text.isEmpty, text.utf8.count <= 20,
              text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let value = UInt64(text), value <= max else { return nil }
        return value
    }

    /// An RFC 3339 `date-time` (§5.6): `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, `T` and `Z` in
    /// either case, a day that exists in its month, hours 00-23, minutes 00-59, seconds 00-60
    /// (60 only as a leap second), offsets up to ±23:59. Fractions beyond microseconds are cut.
    static func dateTime(_ text: String) -> UnixMicros? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20 else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for index in range {
                let byte = bytes[index]
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
              (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day),
              hour <= 23, minute <= 59, second <= 60 else { return nil }
        // The offset is the last 1 or 6 characters; check its ranges here, the rest of the
        // shape in RFC3339.parse.
        switch bytes.last {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            break
        default:
            let start = bytes.count - 6
            guard start >= 19, bytes[start] == UInt8(ascii: "+") || bytes[start] == UInt8(ascii: "-"),
                  let offsetHours = number((start + 1)..<(start + 3)), let offsetMinutes = number((start + 4)..<(start + 6)),
                  offsetHours <= 23, offsetMinutes <= 59 else { return nil }
        }
        return RFC3339.parse(text)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Percent-decodes a path segment once (RFC 3986 §2.1): nil for a malformed escape or bytes
    /// that are not UTF-8. `+` stays a plus sign.
    static func percentDecoded(_ text: String) -> String? {
        text.removingPercentEncoding
    }
}
