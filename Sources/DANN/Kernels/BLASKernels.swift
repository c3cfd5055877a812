import COpenBLAS
import Foundation

/// Which of OpenBLAS's kernel sets this process runs, and a better one when OpenBLAS chose badly.
///
/// A DYNAMIC_ARCH OpenBLAS picks its kernels once, while the library loads, from the CPU's model number.
/// A build older than the CPU does not know the model and falls back to the SSE3 "Prescott" kernels:
/// Debian 12's 0.3.21 does so on Xeon family 6 model 207, where sgemm then runs at 36 instead of 228
/// GFLOP/s on two cores. The instruction-set flags tell what the CPU can run, whatever its model number.
public enum BLASKernels {
    /// The kernel set OpenBLAS loaded, e.g. "SkylakeX", "Haswell", "Zen", "Prescott".
    public static var loaded: String { String(cString: openblas_get_corename()) }

    /// Kernel sets that use neither AVX2 nor AVX-512: what OpenBLAS falls back to for a model it does not know.
    static let generic: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "atom",
                                       "sandybridge", "unknown", "katmai", "coppermine", "northwood"]

    /// The kernel set to ask for with OPENBLAS_CORETYPE, when the loaded one is a generic fallback and the
    /// CPU's flags (from /proc/cpuinfo) support AVX-512 or AVX2 + FMA; nil when the loaded set is right.
    public static func better(than loaded: String, cpuFlags: Set<String>) -> String? {
        guard generic.contains(loaded.lowercased()) else { return nil }
        if cpuFlags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]) { return "SkylakeX" }
        if cpuFlags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// The flags of the first processor in /proc/cpuinfo's text (empty where there is none).
    public static func cpuFlags(cpuinfo: String) -> Set<String> {
        for line in cpuinfo.split(separator: "\n") where line.hasPrefix("flags") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        }
        return []
    }

    /// Restarts this program with OPENBLAS_CORETYPE naming the better kernel set, when there is one and
    /// neither the user nor an earlier start of this process has set it. Call it first in `main`, before
    /// anything else (MPI included) starts: the process keeps its pid, arguments and environment. Returns
    /// when nothing needs to change or the restart is impossible.
    public static func relaunchWithBetterKernelsIfNeeded() {
        guard getenv("OPENBLAS_CORETYPE") == nil,
              let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let better = better(than: loaded, cpuFlags: cpuFlags(cpuinfo: cpuinfo)) else { return }
        setenv("OPENBLAS_CORETYPE", better, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        unsetenv("OPENBLAS_CORETYPE")  // exec failed: carry on with what was loaded
    }
}
