import Dispatch

/// Splits the memory-bound loops around the GEMMs (im2col, col2im, pooling, ReLU) over as many threads
/// as OpenBLAS uses, so that with N threads per rank the whole step, not only its matrix products, runs
/// on N cores. Runs inline when one thread is configured or the work is small.
public enum Parallel {
    /// Below this many elements a dispatch costs more than it saves.
    public static let minimumWork = 1 << 15

    /// Calls `body` on contiguous, disjoint sub-ranges covering 0..<count (one per thread), and returns
    /// when all are done. `work` is the total number of elements touched, to decide whether to split.
    @inline(__always)
    public static func forRanges(_ count: Int, work: Int, _ body: (Range<Int>) -> Void) {
        let threads = min(BLAS.threads, count)
        guard threads > 1, work >= minimumWork else {
            body(0..<count)
            return
        }
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            body(count * t / threads..<count * (t + 1) / threads)
        }
    }
}
