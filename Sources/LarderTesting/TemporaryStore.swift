public import Larder

/// A fresh store in its own temporary directory, closed and removed when released.
///
/// ```swift
/// let temporary = try TemporaryStore()
/// try temporary.store.write(context) { txn in … }
/// ```
public final class TemporaryStore: Sendable {
    public let directory: TemporaryDirectory
    public let store: Store
    public let clock: ManualClock

    public init(options: Store.Options = Store.Options(), clock: ManualClock = ManualClock()) throws {
        directory = try TemporaryDirectory(prefix: "larder-store")
        var options = options
        options.clock = clock
        self.clock = clock
        store = try Store.open(at: directory.path("store"), options: options)
    }

    /// The store's directory.
    public var path: String { directory.path("store") }

    deinit {
        store.close()
    }
}
