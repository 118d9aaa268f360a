/// A deterministic random number generator (SplitMix64) for reproducible randomized tests.
///
/// Take the seed from `LARDER_TEST_SEED` when set, print it on failure, and a failing run can be
/// replayed exactly:
/// ```swift
/// var random = SeededGenerator(seed: SeededGenerator.seedFromEnvironment(default: 42))
/// let amount = UInt64.random(in: 1...500, using: &random)
/// ```
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    public let seed: UInt64
    private var state: UInt64

    public init(seed: UInt64) {
        self.seed = seed
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `LARDER_TEST_SEED` from the environment when set and numeric, otherwise `fallback`.
    public static func seedFromEnvironment(default fallback: UInt64) -> UInt64 {
        if let text = getenvString("LARDER_TEST_SEED"), let seed = UInt64(text) { return seed }
        return fallback
    }

    private static func getenvString(_ name: String) -> String? {
        guard let raw = getenv(name) else { return nil }
        return String(cString: raw)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
