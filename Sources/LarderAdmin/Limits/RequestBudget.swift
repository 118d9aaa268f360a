import Larder
import Synchronization

/// The per-token request budget: at most `unitsMax` cost units in a fixed window of
/// `windowSeconds`, counted from a token's first request in the window. A route costs what
/// ``AdminCosts`` says (a page 1, a verify or an export many more).
///
/// A request is admitted only when its cost fits in what is left of the window. Units charged
/// after admission (an export's further pages, as they stream) may take a token past its budget:
/// the excess is carried into the following windows, so the token waits it out before its next
/// request instead of the stream being cut short.
///
/// Kept per token id only after authentication, so its size is bounded by the token file, not
/// by what clients send. Times come from the store's clock, so tests move them by hand.
final class RequestBudget: Sendable {
    private struct Window {
        var startMicros: UnixMicros
        /// May exceed `unitsMax` after charges; the excess carries into later windows.
        var spent: Int
    }

    private let unitsMax: Int
    private let windowMicros: Int64
    private let windows = Mutex<[String: Window]>([:])

    init(unitsMax: Int, windowSeconds: Int) {
        precondition(unitsMax > 0 && windowSeconds > 0, "validated by AdminConfiguration")
        self.unitsMax = unitsMax
        self.windowMicros = Int64(windowSeconds) * 1_000_000
    }

    /// Admits a request of `cost` units for `tokenID`, or throws 429 RATE_LIMITED with the
    /// seconds until enough of the budget is back (at least 1).
    func spend(tokenID: String, cost: Int, nowMicros: UnixMicros) throws(LarderError) {
        precondition(cost > 0 && cost <= unitsMax, "validated by AdminConfiguration")
        let retryAfter: Int? = windows.withLock { windows in
            var window = current(windows[tokenID], nowMicros: nowMicros)
            guard window.spent + cost <= unitsMax else {
                // Each later window takes unitsMax off what is spent: wait for as many as it takes.
                let windowsNeeded = Int64((window.spent + cost - unitsMax + unitsMax - 1) / unitsMax)
                let remaining = window.startMicros + windowsNeeded * windowMicros - nowMicros
                windows[tokenID] = window
                return max(1, Int((remaining + 999_999) / 1_000_000))
            }
            window.spent += cost
            windows[tokenID] = window
            return nil
        }
        if let retryAfter {
            throw LarderError(.rateLimited,
                              "The token \(tokenID) has used its \(unitsMax) budget units for this window (this request costs \(cost)); retry after \(retryAfter) s.",
                              failurePoint: .authorization, retryAfterSeconds: retryAfter)
        }
    }

    /// Charges `units` already consumed by an admitted request, even past the budget.
    func charge(tokenID: String, units: Int, nowMicros: UnixMicros) {
        guard units > 0 else { return }
        windows.withLock { windows in
            var window = current(windows[tokenID], nowMicros: nowMicros)
            window.spent += units
            windows[tokenID] = window
        }
    }

    /// Gives back the cost of an admitted request that did not run (the server was busy).
    func refund(tokenID: String, units: Int, nowMicros: UnixMicros) {
        windows.withLock { windows in
            var window = current(windows[tokenID], nowMicros: nowMicros)
            window.spent = max(0, window.spent - units)
            windows[tokenID] = window
        }
    }

    /// Units `tokenID` has spent in the current window (for tests and diagnostics).
    func spent(tokenID: String, nowMicros: UnixMicros) -> Int {
        windows.withLock { windows in current(windows[tokenID], nowMicros: nowMicros).spent }
    }

    /// The window `nowMicros` falls in, with what was spent before carried over less `unitsMax`
    /// per window that has passed.
    private func current(_ window: Window?, nowMicros: UnixMicros) -> Window {
        guard var window else { return Window(startMicros: nowMicros, spent: 0) }
        // A clock that went backwards starts a new window rather than locking a token out; the
        // part of its spending beyond one window still carries.
        if nowMicros < window.startMicros {
            return Window(startMicros: nowMicros, spent: max(0, window.spent - unitsMax))
        }
        let passed = (nowMicros - window.startMicros) / windowMicros
        if passed > 0 {
            let refilled = passed >= Int64(Int.max / unitsMax) ? Int.max : Int(passed) * unitsMax
            window.spent = max(0, window.spent - refilled)
            // Nothing carried: the next window counts from this request, as a first one would.
            window.startMicros = window.spent == 0 ? nowMicros : window.startMicros + passed * windowMicros
        }
        return window
    }
}
