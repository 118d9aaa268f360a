import Larder
import Synchronization

/// The per-token request budget: at most `requestsMax` requests in a fixed window of
/// `windowSeconds`, counted from a token's first request in the window.
///
/// Kept per token id only after authentication, so its size is bounded by the token file, not
/// by what clients send. Times come from the store's clock, so tests move them by hand.
final class RequestBudget: Sendable {
    private struct Window {
        var startMicros: UnixMicros
        var count: Int
    }

    private let requestsMax: Int
    private let windowMicros: Int64
    private let windows = Mutex<[String: Window]>([:])

    init(requestsMax: Int, windowSeconds: Int) {
        precondition(requestsMax > 0 && windowSeconds > 0, "validated by AdminConfiguration")
        self.requestsMax = requestsMax
        self.windowMicros = Int64(windowSeconds) * 1_000_000
    }

    /// Spends one request of `tokenID`'s budget, or throws 429 RATE_LIMITED with the seconds until
    /// the window ends (at least 1).
    func spend(tokenID: String, nowMicros: UnixMicros) throws(LarderError) {
        let retryAfter: Int? = windows.withLock { windows in
            var window = windows[tokenID] ?? Window(startMicros: nowMicros, count: 0)
            // A clock that went backwards starts a new window rather than locking a token out.
            if nowMicros >= window.startMicros + windowMicros || nowMicros < window.startMicros {
                window = Window(startMicros: nowMicros, count: 0)
            }
            guard window.count < requestsMax else {
                let remaining = window.startMicros + windowMicros - nowMicros
                return max(1, Int((remaining + 999_999) / 1_000_000))
            }
            window.count += 1
            windows[tokenID] = window
            return nil
        }
        if let retryAfter {
            throw LarderError(.rateLimited,
                              "The token \(tokenID) has used its \(requestsMax) requests for this window; retry after \(retryAfter) s.",
                              failurePoint: .authorization, retryAfterSeconds: retryAfter)
        }
    }
}
