import Dispatch

/// Runs blocking store work (LMDB reads, verify) on a Dispatch thread instead of a cooperative
/// one: with two cores, a long verify on the cooperative pool would stall every other request.
func offload<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global(qos: .userInitiated).async {
            continuation.resume(with: Result { try body() })
        }
    }
}
