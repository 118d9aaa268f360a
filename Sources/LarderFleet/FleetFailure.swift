import Larder
import NIOCore
import PostgresNIO

/// How the fleet code judges an error from PostgreSQL: worth retrying or not, and what to tell
/// a person about it.
enum FleetFailure {
    /// Transient: the server is away, restarting, overloaded, or a transaction lost a race it can
    /// win next time. Everything else (authentication, permissions, a schema error, a refused
    /// fork) is permanent: retrying cannot help and would hide the problem.
    static func isTransient(_ error: any Error) -> Bool {
        if let error = error as? LarderError { return error.retryable }
        if error is CancellationError { return false }
        if let error = error as? PostgresTransactionError {
            let inner: (any Error)? = error.closureError ?? error.commitError ?? error.beginError
            return inner.map(isTransient) ?? true
        }
        if let error = error as? PSQLError {
            switch error.code {
            case .server:
                guard let state = error.serverInfo?[.sqlState] else { return false }
                // 08 connection exception, 53 insufficient resources, 57P01-57P03 shutdown or
                // starting up, 40001 serialization failure, 40P01 deadlock.
                return state.hasPrefix("08") || state.hasPrefix("53") || ["57P01", "57P02", "57P03", "40001", "40P01"].contains(state)
            case .connectionError, .serverClosedConnection, .uncleanShutdown, .clientClosedConnection,
                 .messageDecodingFailure, .unexpectedBackendMessage:
                return true
            default:
                return false
            }
        }
        // Socket errors from NIO (connection refused, reset, timed out) and our own timeouts.
        return true
    }

    /// A one-line account without secrets: PSQLError's own description hides everything, so the
    /// SQLSTATE, message and detail are spelled out here.
    static func describe(_ error: any Error) -> String {
        if let error = error as? LarderError { return error.message }
        if let error = error as? PostgresTransactionError {
            if let inner = error.closureError ?? error.commitError ?? error.beginError { return describe(inner) }
        }
        if let error = error as? PSQLError {
            if let info = error.serverInfo {
                var text = "PostgreSQL error \(info[.sqlState] ?? "?"): \(info[.message] ?? "no message")"
                if let detail = info[.detail] { text += " (\(detail))" }
                return text
            }
            var text = "PostgreSQL connection: \(error.code)"
            if let underlying = error.underlying { text += " (\(underlying))" }
            return text
        }
        if error is CancellationError { return "cancelled" }
        return "\(error)"
    }

    /// The SQLSTATE of a server error, if it is one.
    static func sqlState(_ error: any Error) -> String? {
        if let error = error as? PostgresTransactionError, let inner = error.closureError ?? error.commitError ?? error.beginError {
            return sqlState(inner)
        }
        return (error as? PSQLError)?.serverInfo?[.sqlState]
    }

    /// A server error as the Larder error contract: the fleet database is an external dependency.
    static func larderError(_ error: any Error, doing what: String) -> LarderError {
        if let error = error as? LarderError { return error }
        let transient = isTransient(error)
        return LarderError(transient ? .storageUnavailable : .persistenceError, "\(what): \(describe(error))",
                           failureClass: .externalDependency, failurePoint: "fleet.postgres", retryable: transient)
    }
}

/// An operation against the fleet database, with the dependency's failure policy around it:
/// retries with capped exponential backoff, behind the dependency's breaker.
struct GuardedCall {
    let retry: RetryPolicy
    let breaker: DependencyBreaker
    let clock: FleetClock
    /// Waits that a stop request may cut short; returns true when stopped.
    let pause: @Sendable (Duration) async -> Bool
    /// Called before each wait: the failed attempt, its error, and the delay.
    let onRetry: @Sendable (_ attempt: Int, _ error: any Error, _ delay: Duration) -> Void

    /// Why a guarded call gave up.
    struct GaveUp: Error {
        // lastError is what the database said last; breakerOpen, whether it was open at the end.
        let attempts: Int
        let elapsed: Duration
        let lastError: any Error
        let breakerOpen: Bool
    }

    struct Stopped: Error {}

    /// Runs `operation` until it succeeds, fails permanently (rethrown as is), runs out of
    /// attempts (``GaveUp``), or a stop is requested while waiting (``Stopped``). Transient
    /// failures are retried after the policy's backoff; while the breaker is open, the next
    /// attempt waits for its probe.
    func run<T>(_ operation: () async throws -> T) async throws -> T {
        let started = clock.now()
        var attempt = 0
        while true {
            try Task.checkCancellation()
            if case .wait(let duration) = breaker.permit() {
                // Open: the next attempt is the breaker's probe, whenever it is due.
                if await pause(duration) { throw Stopped() }
                continue
            }
            attempt += 1
            do {
                let value = try await operation()
                breaker.recordSuccess()
                return value
            } catch {
                guard FleetFailure.isTransient(error) else {
                    // The server answered: it is reachable even though the request was refused.
                    if FleetFailure.sqlState(error) != nil || error is LarderError { breaker.recordSuccess() }
                    throw error
                }
                breaker.recordFailure()
                if let max = retry.attemptsMax, attempt >= max {
                    throw GaveUp(attempts: attempt, elapsed: clock.now() - started, lastError: error, breakerOpen: breaker.isOpen)
                }
                let delay = retry.delay(afterAttempt: attempt)
                onRetry(attempt, error, delay)
                if await pause(delay) { throw Stopped() }
            }
        }
    }
}

/// Connects, runs `body`, and closes the connection on every path before returning (postgres-nio
/// requires a connection to be closed before it is released).
func withFleetConnection<T>(_ configuration: PostgresConnection.Configuration,
                            _ body: (PostgresConnection) async throws -> T) async throws -> T {
    let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: FleetLogging.silent)
    do {
        let value = try await body(connection)
        try? await connection.close()
        return value
    } catch {
        try? await connection.close()
        throw error
    }
}
