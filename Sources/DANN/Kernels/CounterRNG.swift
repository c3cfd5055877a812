#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Stateless random numbers from a key: the value depends only on (seed, step, sample, element), so a
/// sample gets the same dropout mask on whichever rank holds it, and resuming needs no RNG state.
/// Built from the SplitMix64 finaliser (Steele, Lea & Flood 2014), which mixes every input bit into
/// every output bit; chaining it over the key words gives a keyed hash.
public enum CounterRNG {
    /// One SplitMix64 output: the state `z0` advanced by 0x9E3779B97F4A7C15, then finalised
    /// (`SampleOrder.SplitMix64` is this applied to a running state).
    @inline(__always)
    public static func mix(_ z0: UInt64) -> UInt64 {
        var z = z0 &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A key for one (seed, stream, index) triple; `element` is then mixed in by `uniform(key:element:)`.
    @inline(__always)
    public static func key(seed: UInt64, _ a: UInt64, _ b: UInt64) -> UInt64 {
        mix(mix(mix(seed) ^ a) ^ b)
    }

    /// Uniform in [0, 1) with 24 random bits (exactly representable as Float).
    @inline(__always)
    public static func uniform(key: UInt64, element: UInt64) -> Float {
        Float(mix(key ^ (element &* 0xD6E8_FEB8_6659_FD93)) >> 40) * 0x1p-24
    }

    /// Standard normal from two uniforms (Box–Muller), in Double for the initialiser.
    public static func normal(key: UInt64, element: UInt64) -> Double {
        let u1 = (Double(mix(key ^ (element &* 2 &* 0xD6E8_FEB8_6659_FD93)) >> 11) + 0.5) * 0x1p-53
        let u2 = Double(mix(key ^ ((element &* 2 &+ 1) &* 0xD6E8_FEB8_6659_FD93)) >> 11) * 0x1p-53
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}
