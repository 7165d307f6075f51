// A small seeded generator (xoshiro256**), so a search is reproducible from its seed on every platform.

/// xoshiro256** seeded through splitmix64; not for cryptography.
public struct SeededGenerator {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    /// Creates a generator whose whole sequence follows from `seed`.
    public init(seed: UInt64) {
        var mix = seed
        func nextMix() -> UInt64 {
            mix &+= 0x9E37_79B9_7F4A_7C15
            var value = mix
            value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
            value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
            return value ^ (value >> 31)
        }
        state = (nextMix(), nextMix(), nextMix(), nextMix())
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = rotate(state.1 &* 5, by: 7) &* 9
        let shifted = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= shifted
        state.3 = rotate(state.3, by: 45)
        return result
    }

    /// A number in 0..<bound (bound > 0), by the high half of a 64 × 64-bit product (bias below 2^-50 here).
    public mutating func below(_ bound: Int) -> Int {
        Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// A number in [0, 1).
    public mutating func unit() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    private func rotate(_ value: UInt64, by count: UInt64) -> UInt64 {
        (value << count) | (value >> (64 - count))
    }
}
