public import Foundation
public import Larder
import Synchronization

/// A clock that moves only when told to: audit times, decision ages and deadlines become
/// deterministic in tests.
///
/// ```swift
/// let clock = ManualClock(start: Date(timeIntervalSince1970: 1_800_000_000))
/// clock.advance(seconds: 15 * 60)
/// ```
public final class ManualClock: LarderClock {
    private let current: Mutex<Date>

    public init(start: Date = Date(timeIntervalSince1970: 1_795_000_000)) {
        current = Mutex(start)
    }

    public func now() -> Date { current.withLock { $0 } }

    public func advance(seconds: Double) {
        current.withLock { $0 = $0.addingTimeInterval(seconds) }
    }

    public func set(_ date: Date) {
        current.withLock { $0 = date }
    }
}
