import Foundation
import XCTest
@testable import DANN

/// The choice of OpenBLAS kernel set: pure rules on /proc/cpuinfo flags, then what OpenBLAS itself reports
/// inside the shipped binary.
final class BLASKernelsTests: XCTestCase {
    // Flag lines copied from the two CPU kinds these machines have (trimmed to the relevant part).
    let xeon = "flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16"
    let epyc = "flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni clzero"

    func testFlagsAreReadFromTheFirstProcessor() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\n\(xeon)\n\nprocessor\t: 1\nflags\t\t: fpu\n"
        let flags = BLASKernels.cpuFlags(cpuinfo: text)
        XCTAssertTrue(flags.contains("avx512bw"))
        XCTAssertTrue(flags.contains("fpu"))
        XCTAssertEqual(flags.count, 16)
        XCTAssertEqual(BLASKernels.cpuFlags(cpuinfo: "processor\t: 0\n"), [])
    }

    func testGenericFallbackIsReplacedByWhatTheFlagsSupport() {
        XCTAssertEqual(BLASKernels.better(than: "Prescott", cpuFlags: BLASKernels.cpuFlags(cpuinfo: xeon)), "SkylakeX")
        XCTAssertEqual(BLASKernels.better(than: "Prescott", cpuFlags: BLASKernels.cpuFlags(cpuinfo: epyc)), "Haswell")
        XCTAssertEqual(BLASKernels.better(than: "Nehalem", cpuFlags: BLASKernels.cpuFlags(cpuinfo: epyc)), "Haswell")
        // A CPU without AVX2 keeps the fallback; a kernel set OpenBLAS chose on purpose is kept.
        XCTAssertNil(BLASKernels.better(than: "Prescott", cpuFlags: ["sse2", "sse3", "avx"]))
        XCTAssertNil(BLASKernels.better(than: "Zen", cpuFlags: BLASKernels.cpuFlags(cpuinfo: epyc)))
        XCTAssertNil(BLASKernels.better(than: "SkylakeX", cpuFlags: BLASKernels.cpuFlags(cpuinfo: xeon)))
        XCTAssertNil(BLASKernels.better(than: "Haswell", cpuFlags: BLASKernels.cpuFlags(cpuinfo: xeon)))
    }

    /// The binary runs the kernels the CPU supports, and a user's OPENBLAS_CORETYPE still wins.
    func testShippedBinaryRunsKernelsTheCPUSupports() throws {
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = BLASKernels.cpuFlags(cpuinfo: cpuinfo)
        func kernels(_ environment: [String: String]) throws -> String {
            try XCTUnwrap(try tinyBench(environment)["blas_kernels"] as? String)
        }
        var environment = ChildProcess.environmentWithoutLauncher()
        environment["OPENBLAS_CORETYPE"] = nil
        let chosen = try kernels(environment)
        XCTAssertNil(BLASKernels.better(than: chosen, cpuFlags: flags), "ran \(chosen) on a CPU with \(flags.sorted())")
        if flags.contains("avx2") && flags.contains("fma") {
            XCTAssertFalse(BLASKernels.generic.contains(chosen.lowercased()), chosen)
        }
        environment["OPENBLAS_CORETYPE"] = "Prescott"
        XCTAssertEqual(try kernels(environment), "Prescott")
    }

    /// The convolutions run the direct kernels of the best ISA /proc/cpuinfo lists (AVX-512F, else AVX2 + FMA),
    /// im2col + BLAS on a CPU with neither, and DANN_CONV_ISA chooses within what the CPU has.
    func testConvolutionKernelsFollowTheCPU() throws {
        let flags = BLASKernels.cpuFlags(cpuinfo: try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))
        func kernels(_ choice: String?) throws -> String { try benchKey("conv_kernels", with: "DANN_CONV_ISA", choice) }
        let avx512 = flags.contains("avx512f"), avx2 = flags.contains("avx2") && flags.contains("fma")
        XCTAssertEqual(try kernels(nil), avx512 ? "avx512" : avx2 ? "avx2" : "blas")
        XCTAssertEqual(try kernels("0"), "blas")
        XCTAssertEqual(try kernels("1"), avx2 ? "avx2" : "blas")
        XCTAssertEqual(try kernels("2"), avx512 ? "avx512" : avx2 ? "avx2" : "blas")
    }

    /// The 5×5 layers' Winograd path runs the best ISA the CPU has (AVX2 too: there it beats im2col + BLAS), and
    /// DANN_CONV_WINOGRAD chooses within it or turns it off.
    func testWinogradKernelsFollowTheCPU() throws {
        let flags = BLASKernels.cpuFlags(cpuinfo: try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))
        func kernels(_ choice: String?) throws -> String { try benchKey("winograd_kernels", with: "DANN_CONV_WINOGRAD", choice) }
        let avx512 = flags.contains("avx512f"), avx2 = flags.contains("avx2") && flags.contains("fma")
        XCTAssertEqual(try kernels(nil), avx512 ? "avx512" : avx2 ? "avx2" : "off")
        XCTAssertEqual(try kernels("0"), "off")
        XCTAssertEqual(try kernels("1"), avx2 ? "avx2" : "off")
        XCTAssertEqual(try kernels("2"), avx512 ? "avx512" : avx2 ? "avx2" : "off")
    }

    /// `key` of `tinyBench`'s report with the environment variable `variable` set to `choice` (or unset).
    private func benchKey(_ key: String, with variable: String, _ choice: String?) throws -> String {
        var environment = ChildProcess.environmentWithoutLauncher()
        environment[variable] = choice
        return try XCTUnwrap(try tinyBench(environment)[key] as? String)
    }

    /// `dann-dist bench --json` of one 4 + 4 step of `small` under `environment`.
    private func tinyBench(_ environment: [String: String]) throws -> [String: Any] {
        let result = try ChildProcess.run(try ChildProcess.executable(),
                                          ["bench", "--arch", "small", "--batch-size", "4", "--steps", "1",
                                           "--warmup", "0", "--peak-size", "0", "--json"],
                                          environment: environment)
        XCTAssertEqual(result.status, 0, result.stderr)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }
}
