#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SIGINT/SIGTERM ask the loop to stop at the next step boundary (after a checkpoint) instead of dying
/// mid-step; a second signal of the same kind ends the process at once.
public enum StopSignal {
    nonisolated(unsafe) static var requested: sig_atomic_t = 0

    public static var isRequested: Bool { requested != 0 }

    public static func install() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { number in
                if StopSignal.requested != 0 { _exit(128 + number) }
                StopSignal.requested = 1
            }
        }
    }

    public static func reset() { requested = 0 }
}
