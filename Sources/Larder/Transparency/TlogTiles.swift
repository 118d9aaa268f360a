/// A C2SP tlog-tiles tile: `width` consecutive hashes of tile level `level`, starting at hash
/// `index · 256` of that level, or — as an entry bundle — the entries of level-0 tile `index`.
///
/// Pure arithmetic and path encoding; ``MerkleTreeReader/tileData(_:)`` reads a hash tile's bytes.
///
/// ```swift
/// let tile = TlogTile(level: 0, index: 1_234_067, width: 12)
/// tile.path          // "tile/0/x001/x234/067.p/12"
/// tile.entriesPath   // "tile/entries/x001/x234/067.p/12"
/// TlogTile.tile(level: 1, index: 0, treeSize: 70_000)?.width   // 256 (full)
/// ```
public struct TlogTile: Hashable, Sendable, CustomStringConvertible {
    /// Hashes in a full tile.
    public static let width = 256
    /// The highest level a tile path may name.
    public static let levelMax = 63

    /// The tile level L: each hash covers 256^L leaves.
    public let level: Int
    /// The tile's index N within its level.
    public let index: UInt64
    /// Hashes (or entries) in the tile: 256 for a full tile, 1 to 255 for a partial one.
    public let width: Int

    /// A tile. Crashes on a level outside 0…63 or a width outside 1…256 (a programming error;
    /// untrusted paths go through ``parse(_:)``).
    public init(level: Int, index: UInt64, width: Int = TlogTile.width) {
        precondition((0...Self.levelMax).contains(level), "tile level \(level) is outside 0…63")
        precondition((1...Self.width).contains(width), "tile width \(width) is outside 1…256")
        self.level = level
        self.index = index
        self.width = width
    }

    /// Whether the tile has fewer than 256 hashes.
    public var isPartial: Bool { width < Self.width }

    /// `tile/<L>/<N>[.p/<W>]`, relative to the log's prefix.
    public var path: String { "tile/\(level)/\(Self.encode(index: index))\(partialSuffix)" }

    /// `tile/entries/<N>[.p/<W>]`, relative to the log's prefix: the entry bundle of level-0 tile N.
    public var entriesPath: String { "tile/entries/\(Self.encode(index: index))\(partialSuffix)" }

    public var description: String { path }

    private var partialSuffix: String { isPartial ? ".p/\(width)" : "" }

    /// The leaves the tile's hashes cover, `index·256^(L+1) ..< index·256^(L+1) + width·256^L`;
    /// nil when that lies beyond 2^64 leaves.
    public var leafRange: Range<UInt64>? {
        let shift = 8 * level
        guard shift < 64 else { return nil }
        let (first, overflow) = (index &* UInt64(Self.width)).multipliedReportingOverflow(by: UInt64(1) << shift)
        guard !overflow, index <= UInt64.max / UInt64(Self.width) else { return nil }
        let (span, spanOverflow) = UInt64(width).multipliedReportingOverflow(by: UInt64(1) << shift)
        let (end, endOverflow) = first.addingReportingOverflow(span)
        guard !spanOverflow, !endOverflow else { return nil }
        return first..<end
    }

    /// How many hashes tile level `level` has in a tree of `treeSize` leaves: ⌊treeSize / 256^level⌋.
    public static func hashCount(level: Int, treeSize: UInt64) -> UInt64 {
        8 * level >= 64 ? 0 : treeSize >> (8 * level)
    }

    /// The tile `index` of `level` as it stands in a tree of `treeSize` leaves: full, partial
    /// (width ⌊treeSize / 256^level⌋ mod 256 for the rightmost one), or nil when it has no hash yet
    /// (empty tiles are never served).
    public static func tile(level: Int, index: UInt64, treeSize: UInt64) -> TlogTile? {
        let count = hashCount(level: level, treeSize: treeSize)
        let full = count / UInt64(width)
        if index < full { return TlogTile(level: level, index: index) }
        let partial = Int(count % UInt64(width))
        guard index == full, partial > 0 else { return nil }
        return TlogTile(level: level, index: index, width: partial)
    }

    /// Every tile a client needs to read the whole tree of `treeSize` leaves, lowest level first:
    /// the full tiles and the rightmost partial tile of each non-empty level.
    public static func tiles(treeSize: UInt64) -> [TlogTile] {
        var tiles: [TlogTile] = []
        var level = 0
        while level <= levelMax, hashCount(level: level, treeSize: treeSize) > 0 {
            let count = hashCount(level: level, treeSize: treeSize)
            let tileCount = (count + UInt64(width) - 1) / UInt64(width)
            for index in 0..<tileCount { tiles.append(tile(level: level, index: index, treeSize: treeSize)!) }
            level += 1
        }
        return tiles
    }

    /// N as tile paths write it: 3-digit groups, every group but the last prefixed with `x`
    /// (`5` → `005`, `1234067` → `x001/x234/067`).
    public static func encode(index: UInt64) -> String {
        var groups: [String] = []
        var rest = index
        repeat {
            let group = String(rest % 1000)
            groups.append(String(repeating: "0", count: 3 - group.count) + group)
            rest /= 1000
        } while rest > 0
        groups.reverse()
        return groups.enumerated().map { $0.offset == groups.count - 1 ? $0.element : "x" + $0.element }.joined(separator: "/")
    }

    /// What a tile path names.
    public enum Resource: Hashable, Sendable {
        /// A hash tile, `tile/<L>/<N>[.p/<W>]`.
        case hashes(TlogTile)
        /// An entry bundle, `tile/entries/<N>[.p/<W>]` (its tile is at level 0).
        case entries(TlogTile)
    }

    /// Parses a path relative to the log prefix (`tile/…`), strictly: only the canonical spelling
    /// of a tile is accepted (no leading zeros in L or W, no extra `x000` groups, W in 1…255),
    /// so each tile has exactly one URL. Nil for anything else.
    public static func parse(_ path: String) -> Resource? {
        var parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 3, parts.count <= 12, parts[0] == "tile" else { return nil }
        var width = Self.width
        if parts[parts.count - 2].hasSuffix(".p") {
            guard let partial = decimal(parts.removeLast(), max: UInt64(Self.width - 1)), partial > 0 else { return nil }
            width = Int(partial)
            parts[parts.count - 1].removeLast(2)
        }
        var index: UInt64 = 0
        let groups = parts[2...]
        guard !groups.isEmpty else { return nil }
        for (position, group) in groups.enumerated() {
            var digits = Substring(group)
            if position < groups.count - 1 {
                guard digits.first == "x" else { return nil }
                digits = digits.dropFirst()
            }
            guard digits.count == 3, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
            let (scaled, overflow) = index.multipliedReportingOverflow(by: 1000)
            let (sum, sumOverflow) = scaled.addingReportingOverflow(UInt64(digits)!)
            guard !overflow, !sumOverflow else { return nil }
            index = sum
        }
        // The canonical spelling has no leading all-zero groups.
        guard encode(index: index).split(separator: "/").count == groups.count else { return nil }
        if parts[1] == "entries" { return .entries(TlogTile(level: 0, index: index, width: width)) }
        guard let level = decimal(parts[1], max: UInt64(levelMax)) else { return nil }
        return .hashes(TlogTile(level: Int(level), index: index, width: width))
    }

    /// A decimal without sign or leading zeros, at most `max`.
    private static func decimal(_ text: String, max: UInt64) -> UInt64? {
        guard !text.isEmpty, text.count <= 20, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
              text == "0" || !text.hasPrefix("0"), let value = UInt64(text), value <= max else { return nil }
        return value
    }
}

/// C2SP tlog-tiles entry bundles: the entries of one level-0 tile, each as a big-endian `u16`
/// byte count followed by the entry's bytes.
///
/// ```swift
/// let bundle = try TlogEntryBundle.encode(records)      // records of leaves N·256 ..< N·256 + W
/// let again = try TlogEntryBundle.decode(bundle)
/// ```
public enum TlogEntryBundle {
    /// The largest entry a bundle can carry: the length prefix is 16 bits.
    public static let entryBytesMax = Int(UInt16.max)

    /// The bundle of `entries` (1 to 256 of them).
    /// - throws: VALIDATION_FAILED for an entry over 65,535 bytes or a count outside 1…256.
    public static func encode(_ entries: [[UInt8]]) throws(LarderError) -> [UInt8] {
        guard (1...TlogTile.width).contains(entries.count) else {
            throw LarderError(.validationFailed, "An entry bundle holds 1 to 256 entries, not \(entries.count).")
        }
        var writer = ByteWriter(capacity: entries.reduce(0) { $0 + 2 + $1.count })
        for (offset, entry) in entries.enumerated() {
            guard entry.count <= entryBytesMax else {
                throw LarderError(.validationFailed,
                                  "Entry \(offset) of the bundle has \(entry.count) bytes; a tlog-tiles entry has at most \(entryBytesMax).")
            }
            writer.write(UInt16(entry.count))
            writer.write(raw: entry)
        }
        return writer.bytes
    }

    /// The entries of a bundle, in order.
    /// - throws: VALIDATION_FAILED for a truncated bundle or more than 256 entries.
    public static func decode(_ bundle: [UInt8]) throws(LarderError) -> [[UInt8]] {
        var entries: [[UInt8]] = []
        var offset = 0
        while offset < bundle.count {
            guard entries.count < TlogTile.width, offset + 2 <= bundle.count else {
                throw LarderError(.validationFailed, "The entry bundle is malformed at byte \(offset).")
            }
            let count = Int(bundle[offset]) << 8 | Int(bundle[offset + 1])
            offset += 2
            guard offset + count <= bundle.count else {
                throw LarderError(.validationFailed, "The entry bundle ends inside an entry of \(count) bytes.")
            }
            entries.append(Array(bundle[offset..<(offset + count)]))
            offset += count
        }
        return entries
    }
}
