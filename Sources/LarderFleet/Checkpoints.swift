public import Larder

/// A signed checkpoint of a box's log, as shipped to `larder_checkpoints`: the tree size (the
/// seq it covers up to), the Merkle root at that size, and the signed note verbatim.
public struct ShippableCheckpoint: Sendable, Hashable {
    public var treeSize: UInt64
    public var rootHash: [UInt8]
    /// The C2SP signed note exactly as the box signed it.
    public var signedNote: String

    public init(treeSize: UInt64, rootHash: [UInt8], signedNote: String) {
        precondition(treeSize >= 1 && rootHash.count == 32, "a checkpoint covers at least one record and has a 32-byte root")
        self.treeSize = treeSize
        self.rootHash = rootHash
        self.signedNote = signedNote
    }
}

/// Where the shipper gets a box's signed checkpoints and verifier key from.
///
/// A store records each checkpoint it signs as a `CHECKPOINT_SIGNED` audit record; the key stays
/// outside the store, so the shipper is told the box's verifier key and reads the checkpoints
/// that key signed (``signed(by:)``; `larder ship --verifier-key`). The default, ``none``, ships
/// none (the `CHECKPOINT_SIGNED` records still ship as audit rows). The shipper sends, in the
/// same transaction as the records, every checkpoint whose tree size is above the newest one the
/// fleet database holds and at most the last seq shipped, so that a checkpoint never arrives
/// before the records it covers.
///
/// ```swift
/// var options = ShipOptions(boxID: "kitchen_7")
/// options.checkpoints = .signed(by: try NoteVerifierKey(parsing: "kitchen-7+1a2b3c4d+AQ…"))
/// ```
public struct ShipCheckpointSource: Sendable {
    /// The box's verifier key (a C2SP note verifier key); recorded in `larder_boxes` the first
    /// time, and a box that later presents another key is refused.
    public let verifierKey: @Sendable (Store) throws -> String?
    /// The checkpoints with `after < treeSize <= through`, in tree-size order.
    public let checkpoints: @Sendable (_ store: Store, _ after: UInt64, _ through: UInt64) throws -> [ShippableCheckpoint]

    public init(verifierKey: @escaping @Sendable (Store) throws -> String?,
                checkpoints: @escaping @Sendable (_ store: Store, _ after: UInt64, _ through: UInt64) throws -> [ShippableCheckpoint]) {
        self.verifierKey = verifierKey
        self.checkpoints = checkpoints
        self.isNone = false
    }

    /// No checkpoints and no verifier key.
    public static let none = ShipCheckpointSource(none: ())

    /// The checkpoints the store recorded (`CHECKPOINT_SIGNED`) signed by `key`, which is
    /// registered as the box's verifier key.
    public static func signed(by key: NoteVerifierKey) -> ShipCheckpointSource {
        ShipCheckpointSource(verifierKey: { _ in key.description }) { store, after, through in
            // A checkpoint of n records is record n + 1, so the cursor "after + 1" starts right
            // after the newest one shipped; the pages run in seq, hence tree size, order.
            var found: [ShippableCheckpoint] = []
            var cursor: String? = String(after + 1)
            while let current = cursor {
                let page = try store.read { view in try view.audit.checkpoints(signedBy: key, limit: 1_000, cursor: current) }
                for signed in page.checkpoints {
                    let size = signed.checkpoint.treeSize
                    if size > through { return found }
                    guard size > after, size >= 1 else { continue }
                    found.append(ShippableCheckpoint(treeSize: size, rootHash: signed.checkpoint.rootHash.bytes, signedNote: signed.note))
                }
                cursor = page.nextCursor
            }
            return found
        }
    }

    /// Lets the shipper skip the checkpoint queries altogether.
    let isNone: Bool

    private init(none: Void) {
        verifierKey = { _ in nil }
        checkpoints = { _, _, _ in [] }
        isNone = true
    }
}
