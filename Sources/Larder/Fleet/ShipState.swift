import Foundation

/// How far `larder ship` got: the small file it keeps beside the store (`ship-state.json` in the
/// store directory, never inside the LMDB file), so that the box can report its shipping lag
/// without talking to the fleet database.
///
/// ```swift
/// if let state = try ShipState.load(storePath: "/var/lib/kitchen/larder") {
///     print("shipped up to seq \(state.shippedSeq) to \(state.destination)")
/// }
/// ```
///
/// The file is written atomically (a temporary file in the same directory, flushed, then renamed
/// over the old one), so a reader sees the old state or the new one, never half of either. Its
/// format is in docs/FORMAT.md ("The ship-state file").
public struct ShipState: Sendable, Hashable {
    /// The format version this code writes and reads.
    public static let formatVersion = 1
    /// The file's name inside the store directory.
    public static let fileName = "ship-state.json"
    /// Files above this are refused: the state is a few hundred bytes.
    public static let fileBytesMax = 64 << 10
    /// A longer `lastError` is cut to this many characters.
    public static let errorCharactersMax = 2_000

    /// The box's id in the fleet database.
    public var boxID: String
    /// Where the log is shipped, without credentials (`postgres://user@host:port/db`).
    public var destination: String
    /// The newest seq the fleet database holds for this box (0 before the first record).
    public var shippedSeq: UInt64
    /// The chain hash at ``shippedSeq``.
    public var shippedChainHash: [UInt8]
    /// When a batch last committed in the fleet database; nil before the first.
    public var shippedAtMicros: UnixMicros?
    /// When the shipper last tried (committed, found nothing new, or failed).
    public var lastAttemptAtMicros: UnixMicros
    /// Why the last attempt failed; nil when it succeeded.
    public var lastError: String?

    public init(boxID: String, destination: String, shippedSeq: UInt64, shippedChainHash: [UInt8],
                shippedAtMicros: UnixMicros?, lastAttemptAtMicros: UnixMicros, lastError: String? = nil) {
        self.boxID = boxID
        self.destination = destination
        self.shippedSeq = shippedSeq
        self.shippedChainHash = shippedChainHash
        self.shippedAtMicros = shippedAtMicros
        self.lastAttemptAtMicros = lastAttemptAtMicros
        self.lastError = lastError.map { String($0.prefix(Self.errorCharactersMax)) }
    }

    /// The state file of the store in directory `storePath`.
    public static func path(storePath: String) -> String {
        URL(fileURLWithPath: storePath).appendingPathComponent(fileName).path
    }

    /// Reads the state file of a store; nil when the store was never shipped.
    ///
    /// - throws: PERSISTENCE_ERROR when the file exists but cannot be read or is not a
    ///   ship-state file of a version this code knows.
    public static func load(storePath: String) throws(LarderError) -> ShipState? {
        let path = path(storePath: storePath)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let data: Data
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            if let size = attributes[.size] as? Int, size > fileBytesMax {
                throw LarderError(.persistenceError, "\(path) is \(size) bytes; a ship-state file is at most \(fileBytesMax).",
                                  failureClass: .dataInconsistency, failurePoint: .read)
            }
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch let error as LarderError {
            throw error
        } catch {
            throw LarderError(.persistenceError, "\(path) could not be read: \(error.localizedDescription)", failurePoint: .read)
        }
        return try decode(data, path: path)
    }

    /// Writes the state file of a store atomically.
    ///
    /// - throws: PERSISTENCE_ERROR when the directory is not writable or the disk is full; the
    ///   previous file is then left as it was.
    public func save(storePath: String) throws(LarderError) {
        let path = Self.path(storePath: storePath)
        let temporary = path + ".tmp-\(ProcessInfo.processInfo.processIdentifier)"
        let bytes = Array(encoded().utf8)
        do {
            let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            defer { close(fd) }
            var written = 0
            while written < bytes.count {
                let result = bytes[written...].withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
                guard result > 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
                written += result
            }
            // Flushed before the rename: a crash leaves the old file or the complete new one.
            guard fsync(fd) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            guard rename(temporary, path) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        } catch {
            unlink(temporary)
            throw LarderError(.persistenceError, "\(path) could not be written: \(error.localizedDescription)",
                              failurePoint: .persist)
        }
    }

    /// The file's JSON text (one object, keys in a fixed order).
    public func encoded() -> String {
        var json = JSONWriter()
        json.object { o in
            o.field("format", Self.formatVersion)
            o.field("box_id", boxID)
            o.field("destination", destination)
            o.field("shipped_seq", shippedSeq)
            o.field("shipped_chain_hash", shippedChainHash.hexString)
            o.field("shipped_at", shippedAtMicros.map(RFC3339.format))
            o.field("last_attempt_at", RFC3339.format(lastAttemptAtMicros))
            o.field("last_error", lastError)
        }
        return json.text + "\n"
    }

    static func decode(_ data: Data, path: String) throws(LarderError) -> ShipState {
        func bad(_ detail: String) -> LarderError {
            LarderError(.persistenceError, "\(path) is not a ship-state file: \(detail).",
                        failureClass: .dataInconsistency, failurePoint: .read)
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { throw bad("not a JSON object") }
        guard let format = object["format"] as? Int else { throw bad("no format") }
        guard format == formatVersion else { throw bad("format \(format) is not supported (expected \(formatVersion))") }
        guard let boxID = object["box_id"] as? String, let destination = object["destination"] as? String else {
            throw bad("no box_id or destination")
        }
        guard let seqNumber = object["shipped_seq"] as? NSNumber, let seq = UInt64(exactly: seqNumber.int64Value),
              seqNumber.int64Value >= 0 else { throw bad("shipped_seq is not a sequence number") }
        guard let hashText = object["shipped_chain_hash"] as? String, let hash = [UInt8](hexString: hashText), hash.count == 32 else {
            throw bad("shipped_chain_hash is not 32 bytes of hex")
        }
        func time(_ key: String) throws(LarderError) -> UnixMicros? {
            guard let value = object[key], !(value is NSNull) else { return nil }
            guard let text = value as? String, let micros = RFC3339.parse(text) else { throw bad("\(key) is not an RFC 3339 time") }
            return micros
        }
        guard let attempt = try time("last_attempt_at") else { throw bad("no last_attempt_at") }
        return ShipState(boxID: boxID, destination: destination, shippedSeq: seq, shippedChainHash: hash,
                         shippedAtMicros: try time("shipped_at"), lastAttemptAtMicros: attempt,
                         lastError: object["last_error"] as? String)
    }
}

/// How far the fleet database is behind the box: what `larder stats` shows and what `/metrics`
/// can export.
public struct ShippingLag: Sendable, Hashable {
    /// The state file it was computed from.
    public let state: ShipState
    /// The box's own newest seq.
    public let headSeq: UInt64
    /// Records the box holds that the fleet database does not (0 when it is up to date).
    public var recordsUnshipped: UInt64 { headSeq > state.shippedSeq ? headSeq - state.shippedSeq : 0 }
    /// Seconds since the oldest record not yet shipped was written, by the store's clock; nil when
    /// everything is shipped.
    public let oldestUnshippedAgeSeconds: Double?
    /// True when the state claims more than the box holds: the store was replaced by an older
    /// copy after shipping, and the next `larder ship` will refuse it.
    public var isAheadOfStore: Bool { state.shippedSeq > headSeq }
}

extension Store {
    /// The shipping lag of this store, from its ship-state file and its own log; nil when the
    /// store was never shipped.
    ///
    /// ```swift
    /// if let lag = try store.shippingLag() {
    ///     print("\(lag.recordsUnshipped) records not yet shipped")
    /// }
    /// ```
    ///
    /// - throws: PERSISTENCE_ERROR when the state file is unreadable or the log cannot be read.
    public func shippingLag() throws(LarderError) -> ShippingLag? {
        guard let state = try ShipState.load(storePath: path) else { return nil }
        let now = options.clock.now().unixMicros
        do {
            return try read { view -> ShippingLag in
                let head = try view.audit.head()
                var age: Double?
                if head.seq > state.shippedSeq, let oldest = try view.audit.record(seq: state.shippedSeq + 1) {
                    age = max(0, Double(now - oldest.record.timeMicros) / 1_000_000)
                }
                return ShippingLag(state: state, headSeq: head.seq, oldestUnshippedAgeSeconds: age)
            }
        } catch let error as LarderError {
            throw error
        } catch {
            throw LarderError(.persistenceError, "The shipping lag could not be read: \(error)", failurePoint: .read)
        }
    }
}
