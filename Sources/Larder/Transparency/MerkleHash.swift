import Crypto
import Foundation

/// One SHA-256 hash of the audit log's Merkle tree (RFC 6962 section 2.1): a leaf hash, a
/// stored subtree hash or a root.
///
/// A value type of 32 bytes held inline, so that hashing a tree allocates nothing per node.
///
/// ```swift
/// let leaf = MerkleHash.leaf(recordBytes)            // SHA-256(0x00 ‖ record bytes)
/// let parent = MerkleHash.node(leaf, otherLeaf)      // SHA-256(0x01 ‖ left ‖ right)
/// print(parent.hexString, parent.base64)
/// ```
public struct MerkleHash: Hashable, Sendable, CustomStringConvertible {
    // The 32 bytes in memory order (not numbers), copied in and out byte for byte. A homogeneous
    // tuple is laid out contiguously, so its raw bytes are exactly the hash.
    private var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    /// Bytes in a hash.
    public static let byteCount = 32

    /// 32 zero bytes. Not the hash of anything; a placeholder only.
    public static let zero = MerkleHash()

    private init() {}

    /// The hash made of exactly 32 bytes; nil for any other count.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Self.byteCount else { return nil }
        self.init()
        withUnsafeMutableBytes(of: &words) { target in
            for (offset, byte) in bytes.enumerated() { target[offset] = byte }
        }
    }

    /// Parses 64 hexadecimal digits; nil when malformed.
    public init?(hex: String) {
        guard hex.utf8.count == 2 * Self.byteCount, let bytes = [UInt8](hexString: hex) else { return nil }
        self.init(bytes: bytes)
    }

    /// Parses standard base64 (RFC 4648 section 4, padded) of 32 bytes, strictly: the text must be
    /// the canonical encoding of its bytes; nil otherwise.
    public init?(base64: String) {
        guard let bytes = StrictBase64.decode(base64) else { return nil }
        self.init(bytes: bytes)
    }

    /// The 32 bytes.
    public var bytes: [UInt8] { withUnsafeBytes(of: words) { Array($0) } }

    /// Lowercase hexadecimal, 64 digits.
    public var hexString: String { bytes.hexString }

    /// Standard padded base64, 44 characters: how checkpoints write a root.
    public var base64: String { StrictBase64.encode(bytes) }

    public var description: String { hexString }

    public static func == (lhs: MerkleHash, rhs: MerkleHash) -> Bool {
        lhs.words.0 == rhs.words.0 && lhs.words.1 == rhs.words.1 && lhs.words.2 == rhs.words.2 && lhs.words.3 == rhs.words.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }

    /// RFC 6962 leaf hash: SHA-256(0x00 ‖ bytes). Equals the audit log's `leafHash` (docs/FORMAT.md section 4).
    public static func leaf(_ entry: [UInt8]) -> MerkleHash {
        var hasher = SHA256()
        hasher.update(data: [UInt8(0x00)])
        hasher.update(data: entry)
        return MerkleHash(digest: hasher.finalize())
    }

    /// RFC 6962 interior node hash: SHA-256(0x01 ‖ left ‖ right).
    public static func node(_ left: MerkleHash, _ right: MerkleHash) -> MerkleHash {
        // 65 bytes on the stack: this runs about once per append and hundreds of times per proof.
        withUnsafeTemporaryAllocation(byteCount: 1 + 2 * byteCount, alignment: 8) { buffer in
            buffer[0] = 0x01
            withUnsafeBytes(of: left.words) { buffer.baseAddress!.advanced(by: 1).copyMemory(from: $0.baseAddress!, byteCount: byteCount) }
            withUnsafeBytes(of: right.words) {
                buffer.baseAddress!.advanced(by: 1 + byteCount).copyMemory(from: $0.baseAddress!, byteCount: byteCount)
            }
            var hasher = SHA256()
            hasher.update(bufferPointer: UnsafeRawBufferPointer(buffer))
            return MerkleHash(digest: hasher.finalize())
        }
    }

    private init(digest: SHA256.Digest) {
        self.init()
        withUnsafeMutableBytes(of: &words) { target in
            digest.withUnsafeBytes { source in target.copyMemory(from: source) }
        }
    }
}

/// Standard base64 (RFC 4648 section 4, with padding), strict both ways: signed notes,
/// checkpoints and keys must have exactly one spelling, or two parties could disagree about
/// what was signed.
enum StrictBase64 {
    static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    /// The bytes, or nil unless `text` is the canonical padded encoding of them (no whitespace,
    /// no missing padding, no stray bits in the last character).
    static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let text = String(text)
        guard text.utf8.count % 4 == 0, let data = Data(base64Encoded: text) else { return nil }
        let bytes = [UInt8](data)
        guard encode(bytes) == text else { return nil }
        return bytes
    }
}
