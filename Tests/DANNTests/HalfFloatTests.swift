import XCTest
@testable import DANN

/// The 16-bit conversions of `--allreduce-dtype` (HalfFloat) against references that share no code with them:
/// values worked out by hand from the formats' definitions, values printed by numpy 2.4.6's `numpy.float16`,
/// and Swift's own `Float16` (compiler-rt's conversions on x86_64 Linux) over every half and millions of floats.
final class HalfFloatTests: XCTestCase {
    // MARK: - bf16

    /// (Float bits, bf16 bits), worked by hand: bf16 keeps the top 16 bits of the Float, rounded on the low 16.
    static let bf16Cases: [(UInt32, UInt16, String)] = [
        (0x3F80_0000, 0x3F80, "1 is exact"),
        (0x3F80_7FFF, 0x3F80, "just under half an ulp rounds down"),
        (0x3F80_8000, 0x3F80, "a tie goes to the even 0x3F80"),
        (0x3F81_8000, 0x3F82, "a tie goes to the even 0x3F82, up"),
        (0x3F80_8001, 0x3F81, "just over half an ulp rounds up"),
        (0xBF80_8001, 0xBF81, "negative, by magnitude"),
        (0x3F7F_FFFF, 0x3F80, "a carry into the exponent"),
        (0x7F7F_7FFF, 0x7F7F, "largest finite bf16 stays finite"),
        (0x7F7F_8000, 0x7F80, "a tie above bf16's largest finite goes to the even inf"),
        (0x7F7F_FFFF, 0x7F80, "Float's largest rounds to inf"),
        (0xFF7F_FFFF, 0xFF80, "and its negative to -inf"),
        (0x7F80_0000, 0x7F80, "inf"),
        (0x8000_0000, 0x8000, "-0"),
        (0x0000_8000, 0x0000, "a subnormal tie goes to the even 0"),
        (0x0001_8000, 0x0002, "a subnormal tie goes to the even 2"),
        (0x0000_8001, 0x0001, "a subnormal just over the tie"),
        (0x0080_0000, 0x0080, "Float's smallest normal"),
        (0x3DCC_CCCD, 0x3DCD, "0.1: 0xCCCD is over half of 0x10000"),
        (0x4049_0FDB, 0x4049, "π: 0x0FDB is under half"),
    ]

    func testBF16AgainstHandWorkedValues() {
        for (bits, expected, why) in Self.bf16Cases {
            let rounded = HalfFloat.bf16(Float(bitPattern: bits))
            XCTAssertEqual(rounded, expected, String(format: "0x%08X → 0x%04X, expected 0x%04X: %@", bits, rounded, expected, why))
            XCTAssertEqual(HalfFloat.float(bf16: expected).bitPattern, UInt32(expected) << 16, "widening is exact")
        }
    }

    /// A NaN stays a NaN with its sign, including one whose payload sits only in the bits bf16 drops (plain
    /// truncation would turn 0x7F800001 into inf).
    func testBF16KeepsNaN() {
        for bits: UInt32 in [0x7F80_0001, 0x7FC0_0000, 0xFF80_0001, 0x7FFF_FFFF, 0xFFC1_2345] {
            let rounded = HalfFloat.bf16(Float(bitPattern: bits))
            XCTAssertTrue(HalfFloat.float(bf16: rounded).isNaN, String(format: "0x%08X → 0x%04X", bits, rounded))
            XCTAssertEqual(rounded & 0x8000, UInt16(bits >> 16) & 0x8000, "sign")
        }
    }

    /// Against an independent rounding: the two bf16 neighbours of x, the nearer by exact Double distance, the
    /// one with an even last bit on a tie.
    func testBF16AgainstNearestNeighbour() {
        var checked = 0
        for bits in stride(from: UInt32(0), to: 0x7F7F_0000, by: 7919) + [0x3F80_8000, 0x3F81_8000, 0x0000_8000] {
            for signed in [bits, bits | 0x8000_0000] {
                let x = Float(bitPattern: signed)
                XCTAssertEqual(HalfFloat.bf16(x), Self.nearestBF16(x), String(format: "0x%08X", signed))
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 500_000)
    }

    /// The bf16 nearest to a finite x below bf16's largest: of its two neighbours (x with the low 16 bits
    /// cleared, and one bf16 ulp further from zero) the nearer by exact Double distance, the even one on a tie.
    static func nearestBF16(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        let down = bits & 0xFFFF_0000, up = down + 0x1_0000
        let dDown = abs(Double(x) - Double(Float(bitPattern: down))), dUp = abs(Double(Float(bitPattern: up)) - Double(x))
        return UInt16((dDown < dUp || (dDown == dUp && (down >> 16) & 1 == 0) ? down : up) >> 16)
    }

    // MARK: - fp16

    /// (Float bits, fp16 bits) printed by numpy 2.4.6: `np.float16(np.float32(v)).view(np.uint16)`.
    static let numpyFP16: [(UInt32, UInt16)] = [
        (0x3DCC_CCCD, 0x2E66),  // 0.1 → 0.0999755859375
        (0x3EAA_AAAB, 0x3555),  // 1/3 → 0.333251953125
        (0xB7D1_B717, 0x81A3),  // -2.5e-05 → a negative subnormal
        (0x387F_DA40, 0x03FF),  // 6.1e-05 → the largest subnormal
        (0x3300_D959, 0x0001),  // 3.0e-08 → 2⁻²⁴, the smallest subnormal
        (0x337F_FAE5, 0x0001),  // 5.96e-08
        (0x32FF_FAE5, 0x0000),  // 2.98e-08 → 0
        (0x3300_0000, 0x0000),  // 2⁻²⁵: a tie between 0 and 2⁻²⁴, to the even 0
        (0x33C0_0000, 0x0002),  // 3·2⁻²⁵: a tie between 1 and 2 units, to the even 2
        (0x387F_E000, 0x0400),  // 2⁻¹⁴ − 2⁻²⁵: a tie between the largest subnormal and the smallest normal
        (0x387F_F000, 0x0400),
        (0x3880_0000, 0x0400),  // 2⁻¹⁴, the smallest normal
        (0x477F_E000, 0x7BFF),  // 65504, the largest finite
        (0x477F_EF00, 0x7BFF),  // 65519
        (0x477F_F000, 0x7C00),  // 65520: the tie above 65504 goes to the even 2¹⁶, which is inf
        (0x47C3_5000, 0x7C00),  // 1e5 → inf
        (0xC7C3_5000, 0xFC00),  // -1e5 → -inf
        (0x7F7F_FFFF, 0x7C00),  // Float's largest → inf
        (0x7F80_0000, 0x7C00),  // inf
        (0x3F80_1000, 0x3C00),  // 1 + 2⁻¹¹: a tie, to the even 1
        (0x3F80_3000, 0x3C02),  // 1 + 3·2⁻¹¹: a tie, to the even 0x3C02
        (0x449A_522B, 0x64D3),  // 1234.5678 → 1235
        (0x8000_0000, 0x8000),  // -0
        (0x0000_0001, 0x0000),  // Float's smallest subnormal → 0
        (0x4049_0FDB, 0x4248),  // π → 3.140625
    ]

    func testFP16AgainstNumpy() {
        for (bits, expected) in Self.numpyFP16 {
            let rounded = HalfFloat.fp16(Float(bitPattern: bits))
            XCTAssertEqual(rounded, expected, String(format: "0x%08X → 0x%04X, numpy 0x%04X", bits, rounded, expected))
            let back = HalfFloat.float(fp16: expected)
            XCTAssertEqual(HalfFloat.fp16(back), expected, "a half survives the round trip")
        }
        XCTAssertEqual(HalfFloat.float(fp16: 0x0001), 0x1p-24)
        XCTAssertEqual(HalfFloat.float(fp16: 0x7BFF), 65504)
        XCTAssertEqual(HalfFloat.float(fp16: 0xFC00), -.infinity)
    }

    /// Every one of the 65,536 halves widens to the Float that Swift's `Float16` gives (NaNs: a NaN of the same sign).
    func testFP16WideningOfEveryHalfMatchesFloat16() {
        for value in 0...0xFFFF {
            let bits = UInt16(value)
            let mine = HalfFloat.float(fp16: bits), reference = Float(Float16(bitPattern: bits))
            if reference.isNaN {
                XCTAssertTrue(mine.isNaN && mine.sign == reference.sign, String(format: "0x%04X", value))
            } else {
                XCTAssertEqual(mine.bitPattern, reference.bitPattern, String(format: "0x%04X", value))
            }
        }
    }

    /// Narrowing matches `Float16(x)` bit for bit on every exponent's rounding boundaries and on a stride through
    /// all 2³² bit patterns (NaNs: a NaN of the same sign).
    func testFP16NarrowingMatchesFloat16() {
        var patterns: [UInt32] = Array(stride(from: UInt32(0), to: UInt32.max - 9973, by: 9973))
        for exponent in UInt32(0)..<256 {
            for mantissa: UInt32 in [0, 1, 0xFFF, 0x1000, 0x1001, 0x1FFF, 0x2000, 0x2FFF, 0x3000, 0x3001, 0x40_0000, 0x7F_E000, 0x7F_F000, 0x7F_FFFF] {
                patterns.append(exponent << 23 | mantissa)
            }
        }
        var mismatches = 0
        for bits in patterns {
            for signed in [bits, bits ^ 0x8000_0000] {
                let x = Float(bitPattern: signed)
                let mine = HalfFloat.fp16(x), reference = Float16(x)
                let ok = reference.isNaN ? Float16(bitPattern: mine).isNaN && (mine & 0x8000 != 0) == (reference.sign == .minus)
                                          : mine == reference.bitPattern
                if !ok {
                    mismatches += 1
                    if mismatches <= 10 { XCTFail(String(format: "0x%08X → 0x%04X, Float16 0x%04X", signed, mine, reference.bitPattern)) }
                }
            }
        }
        XCTAssertEqual(mismatches, 0)
        XCTAssertGreaterThan(patterns.count, 400_000)
    }

    // MARK: - Buffers and the reduction step

    /// The buffer loops (vectorised, with a scalar tail) give the one-value functions' bits at every length.
    func testBufferConversionsMatchTheScalarOnes() {
        for format in HalfFormat.allCases {
            for count in [0, 1, 7, 8, 9, 63, 1000] {
                let values = (0..<count).map { Float(bitPattern: UInt32(truncatingIfNeeded: $0 &* 2_654_435_761)) }
                var halves = [UInt16](repeating: 0, count: count)
                HalfFloat.narrow(values, into: &halves, count: count, format: format)
                XCTAssertEqual(halves, values.map { HalfFloat.narrow($0, format) }, "\(format) \(count)")
                var widened = [Float](repeating: 0, count: count)
                HalfFloat.widen(halves, into: &widened, count: count, format: format)
                XCTAssertEqual(widened.map(\.bitPattern), halves.map { HalfFloat.widen($0, format).bitPattern }, "\(format) \(count)")
            }
        }
    }

    /// The reduction step rounds the sum once: worked cases, then each element against the exact sum (in
    /// Double) rounded once by an independent reference (`Float16` for fp16; for bf16 the nearest neighbour,
    /// on the elements whose exact sum is a Float).
    func testAddRoundsTheExactSumOnce() {
        func add(_ a: UInt16, _ b: UInt16, _ format: HalfFormat) -> UInt16 {
            var y = [b]
            HalfFloat.add([a], into: &y, count: 1, format: format)
            return y[0]
        }
        // bf16: 1 + 2⁻⁸ is a tie between 1 and 1 + 2⁻⁷; the even one is 1.
        XCTAssertEqual(add(0x3F80, 0x3B80, .bf16), 0x3F80)
        // bf16: 1 + 3·2⁻⁸ (1 + 2⁻⁸ + 2⁻⁷, a tie) goes up to the even 1 + 2⁻⁶.
        XCTAssertEqual(add(0x3F81, 0x3B80, .bf16), 0x3F82)
        // fp16: 65504 + 16 = 65520 rounds to inf; 65504 + 8 stays 65504.
        XCTAssertEqual(add(0x7BFF, 0x4C00, .fp16), 0x7C00)
        XCTAssertEqual(add(0x7BFF, 0x4800, .fp16), 0x7BFF)
        // fp16: two smallest subnormals make 2·2⁻²⁴ exactly; x + (−x) is +0.
        XCTAssertEqual(add(0x0001, 0x0001, .fp16), 0x0002)
        XCTAssertEqual(add(0x3C00, 0xBC00, .fp16), 0x0000)
        XCTAssertEqual(add(0x7FC0, 0x3F80, .bf16) & 0x7FC0, 0x7FC0, "NaN + x is NaN")
        // fp16: 2¹⁵ + 2⁻²⁴ is not a Float; the sum still rounds to 2¹⁵ (Float's 24 bits ≥ 2·11 + 2 make the
        // double rounding innocuous).
        XCTAssertEqual(add(0x7800, 0x0001, .fp16), 0x7800)

        let count = 4099
        for format in HalfFormat.allCases {
            let a = (0..<count).map { HalfFloat.narrow(sin(Float($0)) * 3, format) }
            let b = (0..<count).map { HalfFloat.narrow(cos(Float($0) * 0.7) * Float($0 % 13), format) }
            var y = b
            HalfFloat.add(a, into: &y, count: count, format: format)
            var checked = 0
            for i in 0..<count {
                let exact = Double(HalfFloat.widen(a[i], format)) + Double(HalfFloat.widen(b[i], format))
                let expected: UInt16
                if format == .fp16 {
                    expected = Float16(exact).bitPattern
                } else {
                    guard Double(Float(exact)) == exact else { continue }
                    expected = Self.nearestBF16(Float(exact))
                }
                XCTAssertEqual(y[i], expected, "\(format) element \(i)")
                checked += 1
            }
            XCTAssertGreaterThan(checked, count * 9 / 10, "\(format)")
        }
    }
}
