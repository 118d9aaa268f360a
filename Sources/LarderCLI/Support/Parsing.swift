import Larder
import Logging

/// Parsers for the tool's option values; each failure is a VALIDATION_FAILED naming the option.
enum Parse {
    /// `4h`, `30m`, `7d`, `45s` → seconds.
    static func duration(_ text: String, option: String) throws(LarderError) -> Int64 {
        guard let unit = text.last, let value = Int64(text.dropLast()), value > 0 else {
            throw LarderError(.validationFailed, "\(option) \(JSONWriter.quoted(text)) is not a duration like 30m, 4h or 7d.")
        }
        let seconds: Int64
        switch unit {
        case "s": seconds = value
        case "m": seconds = value * 60
        case "h": seconds = value * 3_600
        case "d": seconds = value * 86_400
        default:
            throw LarderError(.validationFailed, "\(option) \(JSONWriter.quoted(text)) has unit \(unit); use s, m, h or d.")
        }
        guard seconds <= 366 * 86_400 else {
            throw LarderError(.validationFailed, "\(option) \(text) is longer than a year.")
        }
        return seconds
    }

    /// `trace`, `debug`, `info`, `notice`, `warning`, `error`, `critical` → a swift-log level.
    static func logLevel(_ text: String, option: String = "--log-level") throws(LarderError) -> Logger.Level {
        guard let level = Logger.Level(rawValue: text) else {
            throw LarderError(.validationFailed,
                              "\(option) \(JSONWriter.quoted(text)) is not one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        return level
    }

    /// A logger writing to standard error at `level` and above (swift-log's stream handler):
    /// the commands' own output stays alone on standard output.
    static func stderrLogger(level: Logger.Level) -> Logger {
        var logger = Logger(label: "larder") { label in StreamLogHandler.standardError(label: label) }
        logger.logLevel = level
        return logger
    }

    /// RFC 3339 → microseconds.
    static func time(_ text: String, option: String) throws(LarderError) -> UnixMicros {
        guard let micros = RFC3339.parse(text) else {
            throw LarderError(.validationFailed, "\(option) \(JSONWriter.quoted(text)) is not an RFC 3339 time like 2026-11-23T09:00:00Z.")
        }
        return micros
    }
}

extension String {
    /// Pads or cuts to `width` characters, for table columns.
    func column(_ width: Int) -> String {
        if count > width { return String(prefix(max(0, width - 1))) + "…" }
        return self + String(repeating: " ", count: width - count)
    }
}
