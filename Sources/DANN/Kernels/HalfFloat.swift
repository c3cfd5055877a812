/// The two 16-bit float formats the gradient exchange can use (`--allreduce-dtype`, docs/design.md §3.10), and
/// conversions between them and Float, eight lanes at a time. Both round to nearest, ties to even, and keep NaN
/// a (quiet) NaN.
///
/// - bf16: Float's sign, 8 exponent bits and top 7 mantissa bits: Float's range, 8 significant bits.
/// - fp16: IEEE binary16, 5 exponent bits and 10 mantissa bits: 11 significant bits, largest finite 65504,
///   subnormals down to 2⁻²⁴; anything that rounds past 65504 becomes ±inf.
///
/// fp16 is converted with integer operations of our own rather than Swift's `Float16`, whose conversions
/// compile to a call per element on x86_64 Linux (no F16C at the baseline ISA) and do not vectorise.
/// HalfFloatTests checks ours against `Float16` (every one of the 65,536 halves widened; narrowing of every
/// tie, subnormal and overflow boundary and a few million other floats).
public enum HalfFormat: String, Codable, CaseIterable, Sendable {
    case bf16, fp16
}

public enum HalfFloat {
    // Each conversion is a scalar function of the bits with selects instead of branches, called from plain
    // loops: LLVM vectorises those (8 lanes under AVX2), while the same code written with SIMD8 and
    // `replacing(with:where:)` measured 5–10 times slower (lane-by-lane selects).

    // MARK: One value

    /// `x` rounded to bf16: the top 16 bits after adding half an ulp of bf16 (minus one when the kept part is
    /// even, so a tie goes to even). A NaN keeps its sign and top payload bits and gets the quiet bit, so a
    /// NaN whose payload sits in the dropped bits does not turn into inf.
    @inline(__always)
    public static func bf16(_ x: Float) -> UInt16 { UInt16(truncatingIfNeeded: narrowBF16(x.bitPattern)) }

    @inline(__always)
    public static func float(bf16 bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// `x` rounded to IEEE binary16.
    @inline(__always)
    public static func fp16(_ x: Float) -> UInt16 { UInt16(truncatingIfNeeded: narrowFP16(x.bitPattern)) }

    @inline(__always)
    public static func float(fp16 bits: UInt16) -> Float { Float(bitPattern: widenFP16(UInt32(bits))) }

    public static func narrow(_ x: Float, _ format: HalfFormat) -> UInt16 { format == .bf16 ? bf16(x) : fp16(x) }
    public static func widen(_ bits: UInt16, _ format: HalfFormat) -> Float { format == .bf16 ? float(bf16: bits) : float(fp16: bits) }

    // MARK: Buffers

    /// out[i] = x[i] rounded to `format`.
    public static func narrow(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<UInt16>, count: Int, format: HalfFormat) {
        switch format {
        case .bf16: for i in 0..<count { out[i] = UInt16(truncatingIfNeeded: narrowBF16(x[i].bitPattern)) }
        case .fp16: for i in 0..<count { out[i] = UInt16(truncatingIfNeeded: narrowFP16(x[i].bitPattern)) }
        }
    }

    /// out[i] = h[i] as a Float (exact).
    public static func widen(_ h: UnsafePointer<UInt16>, into out: UnsafeMutablePointer<Float>, count: Int, format: HalfFormat) {
        switch format {
        case .bf16: for i in 0..<count { out[i] = Float(bitPattern: UInt32(h[i]) << 16) }
        case .fp16: for i in 0..<count { out[i] = Float(bitPattern: widenFP16(UInt32(h[i]))) }
        }
    }

    /// y[i] = (x[i] + y[i]) rounded to `format`, the sum formed in Float: the reduction step of a 16-bit
    /// allreduce. The result is the exact sum rounded once: the Float sum may round too, but a first rounding
    /// to 24 bits cannot change a second one to 8 or 11 (24 ≥ 2p + 2, so the double rounding is innocuous).
    public static func add(_ x: UnsafePointer<UInt16>, into y: UnsafeMutablePointer<UInt16>, count: Int, format: HalfFormat) {
        switch format {
        case .bf16:
            for i in 0..<count {
                let sum = Float(bitPattern: UInt32(x[i]) << 16) + Float(bitPattern: UInt32(y[i]) << 16)
                y[i] = UInt16(truncatingIfNeeded: narrowBF16(sum.bitPattern))
            }
        case .fp16:
            for i in 0..<count {
                let sum = Float(bitPattern: widenFP16(UInt32(x[i]))) + Float(bitPattern: widenFP16(UInt32(y[i])))
                y[i] = UInt16(truncatingIfNeeded: narrowFP16(sum.bitPattern))
            }
        }
    }

    // MARK: Bits

    /// Float bits → bf16 bits (in the low half).
    @inline(__always)
    static func narrowBF16(_ u: UInt32) -> UInt32 {
        let rounded = (u &+ 0x7FFF &+ ((u >> 16) & 1)) >> 16
        return (u & 0x7FFF_FFFF) > 0x7F80_0000 ? (u >> 16) | 0x0040 : rounded
    }

    /// Float bits → fp16 bits. Three ranges of |x|:
    /// - at least 2⁻¹⁴ (fp16's smallest normal): rebias the exponent (127 → 15, i.e. subtract 112 << 23) and
    ///   round the 13 dropped mantissa bits to nearest even by adding 0xFFF plus the lowest kept bit; a carry
    ///   runs into the exponent, and from 65520 up into exponent 31, which is inf (65520 is the tie between
    ///   65504 and 2¹⁶, whose even neighbour is 2¹⁶). From 2¹⁶ up the result is inf outright.
    /// - below 2⁻¹⁴: the result is a subnormal, a whole number of 2⁻²⁴. Adding 0.5 (whose ulp is 2⁻²⁴) makes the
    ///   FPU round |x| to that grid, to nearest even; the sum's low mantissa bits are then the fp16 bits
    ///   (reaching 0x400, the smallest normal, when |x| rounds up to 2⁻¹⁴).
    /// - inf and NaN: exponent 31, a NaN made quiet and keeping its top payload bits.
    @inline(__always)
    static func narrowFP16(_ u: UInt32) -> UInt32 {
        let sign = (u >> 16) & 0x8000
        let a = u & 0x7FFF_FFFF
        let normal = (a &- 0x3800_0000 &+ 0x0FFF &+ ((a >> 13) & 1)) >> 13
        let subnormal = (Float(bitPattern: a) + 0.5).bitPattern &- 0x3F00_0000
        var result = a < 0x3880_0000 ? subnormal : normal
        result = a >= 0x4780_0000 ? 0x7C00 : result
        result = a > 0x7F80_0000 ? 0x7E00 | ((a >> 13) & 0x3FF) : result
        return result | sign
    }

    /// fp16 bits (low half) → Float bits, exactly. A normal half moves its exponent and mantissa up by 13 bits
    /// and rebiases (+112 << 23); inf and NaN get Float's all-ones exponent (a NaN made quiet); a subnormal
    /// m·2⁻²⁴ is formed exactly as (0.5 + m·2⁻²⁴) − 0.5.
    @inline(__always)
    static func widenFP16(_ h: UInt32) -> UInt32 {
        let sign = (h & 0x8000) << 16
        let body = h & 0x7FFF
        let normal = (body << 13) &+ 0x3800_0000
        let special = 0x7F80_0000 | ((body & 0x3FF) << 13) | (body > 0x7C00 ? 0x0040_0000 : 0)
        let subnormal = (Float(bitPattern: body | 0x3F00_0000) - 0.5).bitPattern
        let result = body >= 0x7C00 ? special : (body < 0x0400 ? subnormal : normal)
        return result | sign
    }
}
