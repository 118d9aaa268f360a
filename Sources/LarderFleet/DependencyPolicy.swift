import Synchronization

/// Where the fleet code reads the time and how it waits: the system's monotonic clock by
/// default, a manual one in tests so that a minute of backoff takes no time.
///
/// ```swift
/// let clock = FleetClock.system
/// try await clock.sleep(.seconds(1))
/// ```
public struct FleetClock: Sendable {
    /// Monotonic time since an arbitrary origin.
    public let now: @Sendable () -> Duration
    /// Waits `duration`; throws CancellationError when the task is cancelled.
    public let sleep: @Sendable (Duration) async throws -> Void

    public init(now: @escaping @Sendable () -> Duration, sleep: @escaping @Sendable (Duration) async throws -> Void) {
        self.now = now
        self.sleep = sleep
    }

    /// `ContinuousClock`: keeps counting while the machine sleeps, never goes back.
    public static let system: FleetClock = {
        let origin = ContinuousClock.now
        return FleetClock(now: { ContinuousClock.now - origin },
                          sleep: { duration in try await Task.sleep(for: duration, clock: .continuous) })
    }()
}

/// Retries of an operation on an external dependency: exponential backoff, capped.
///
/// The delay before retry n (n = 1, 2, …) is `initialDelay · 2^(n−1)`, never more than
/// `delayMax`: 1 s, 2 s, 4 s, 8 s, 16 s, 30 s, 30 s … with the defaults.
public struct RetryPolicy: Sendable, Hashable {
    /// Attempts per operation, the first included; nil retries until the task is cancelled (the
    /// breaker still limits how often a dead server is tried).
    public var attemptsMax: Int?
    public var initialDelay: Duration
    public var delayMax: Duration

    public init(attemptsMax: Int? = 5, initialDelay: Duration = .seconds(1), delayMax: Duration = .seconds(30)) {
        precondition(attemptsMax.map { $0 >= 1 } ?? true, "attemptsMax must be at least 1")
        precondition(initialDelay > .zero && delayMax >= initialDelay, "delays must be positive and delayMax >= initialDelay")
        self.attemptsMax = attemptsMax
        self.initialDelay = initialDelay
        self.delayMax = delayMax
    }

    /// The wait after failed attempt `attempt` (1-based).
    public func delay(afterAttempt attempt: Int) -> Duration {
        precondition(attempt >= 1)
        var delay = initialDelay
        for _ in 1..<min(attempt, 62) {
            delay = delay * 2
            if delay >= delayMax { return delayMax }
        }
        return min(delay, delayMax)
    }
}

/// A circuit breaker for one external dependency (one fleet database).
///
/// Closed, it lets every call through and counts consecutive failures. After
/// `failuresToOpen` of them it opens: calls fail fast, without touching the network, until
/// `probeInterval` has passed; then it lets one call through (half-open). That probe's success
/// closes it; its failure opens it for another interval.
///
/// ```swift
/// let breaker = DependencyBreaker(name: "postgres://larder@db:5432/fleet")
/// if case .wait(let duration) = breaker.permit() { try await clock.sleep(duration) }
/// ```
public final class DependencyBreaker: Sendable {
    public struct Policy: Sendable, Hashable {
        public var failuresToOpen: Int
        public var probeInterval: Duration

        public init(failuresToOpen: Int = 5, probeInterval: Duration = .seconds(30)) {
            precondition(failuresToOpen >= 1 && probeInterval > .zero)
            self.failuresToOpen = failuresToOpen
            self.probeInterval = probeInterval
        }
    }

    public enum State: Sendable, Hashable {
        case closed(consecutiveFailures: Int)
        case open(since: Duration)
        case halfOpen
    }

    /// What a caller may do now.
    public enum Permit: Sendable, Hashable {
        /// Go ahead (closed, or this call is the probe).
        case proceed
        /// Open: the next probe is allowed after this long.
        case wait(Duration)
    }

    public let name: String
    public let policy: Policy
    private let clock: FleetClock
    private let state: Mutex<State>
    /// Transitions, for logging (closed → open, open → half-open, half-open → closed/open).
    private let onChange: @Sendable (State) -> Void

    public init(name: String, policy: Policy = Policy(), clock: FleetClock = .system,
                onChange: @escaping @Sendable (State) -> Void = { _ in }) {
        self.name = name
        self.policy = policy
        self.clock = clock
        self.state = Mutex(.closed(consecutiveFailures: 0))
        self.onChange = onChange
    }

    public var current: State { state.withLock { $0 } }

    public var isOpen: Bool {
        if case .closed = current { return false }
        return true
    }

    /// Asks to make a call. While open, `.wait` says how long until the probe; once that time has
    /// come, exactly one caller gets `.proceed` as the probe (others keep waiting for its result).
    public func permit() -> Permit {
        let now = clock.now()
        let (permit, changed) = state.withLock { state -> (Permit, State?) in
            switch state {
            case .closed:
                return (.proceed, nil)
            case .open(let since):
                let due = since + policy.probeInterval
                guard now >= due else { return (.wait(due - now), nil) }
                state = .halfOpen
                return (.proceed, .halfOpen)
            case .halfOpen:
                // A probe is out: wait a little for its verdict instead of sending a second one.
                return (.wait(min(policy.probeInterval, .seconds(1))), nil)
            }
        }
        if let changed { onChange(changed) }
        return permit
    }

    public func recordSuccess() {
        let changed = state.withLock { state -> State? in
            if case .closed(0) = state { return nil }
            let wasOpen: Bool
            if case .closed = state { wasOpen = false } else { wasOpen = true }
            state = .closed(consecutiveFailures: 0)
            return wasOpen ? state : nil
        }
        if let changed { onChange(changed) }
    }

    public func recordFailure() {
        let now = clock.now()
        let changed = state.withLock { state -> State? in
            switch state {
            case .closed(let failures):
                if failures + 1 >= policy.failuresToOpen {
                    state = .open(since: now)
                    return state
                }
                state = .closed(consecutiveFailures: failures + 1)
                return nil
            case .halfOpen, .open:
                state = .open(since: now)
                return state
            }
        }
        if let changed { onChange(changed) }
    }
}
