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
/// The store does not sign checkpoints yet, so the default, ``none``, ships none. When it does,
/// the `larder` tool passes a source that reads them from the store; the shipper then sends, in
/// the same transaction as the records, every checkpoint whose tree size is above the newest one
/// the fleet database holds and at most the last seq shipped, so that a checkpoint never arrives
/// before the records it covers.
///
/// ```swift
/// let source = ShipCheckpointSource(verifierKey: { _ in key }) { store, after, through in
///     try checkpoints(of: store).filter { $0.treeSize > after && $0.treeSize <= through }
/// }
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

    /// Lets the shipper skip the checkpoint queries altogether.
    let isNone: Bool

    private init(none: Void) {
        verifierKey = { _ in nil }
        checkpoints = { _, _, _ in [] }
        isNone = true
    }
}
