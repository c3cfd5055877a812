import COpenBLAS

/// Row-major single-precision matrix products through OpenBLAS, threaded by dann-dist itself.
///
/// OpenBLAS always runs single-threaded here (docs/design.md §5, "Threads"): `setThreads(n)` sizes
/// dann-dist's own worker pool (`Parallel`), and `gemm` splits a large product into n blocks of C, each
/// a single-threaded sgemm on its own thread. One pool for every parallel loop, instead of OpenBLAS's
/// threads beside ours: its idle workers spin for a while after each call, on the very cores where the
/// im2col, pooling and normalisation loops then run (those loops ran 1.6× slower beside them), and
/// OpenBLAS 0.3.21 allocates its job arrays on every threaded call. Splitting C into blocks keeps each
/// element's sum over k in the same order as one call, so the result does not depend on the thread count.
public enum BLAS {
    /// C[m×n] = alpha · op(A) · op(B) + beta · C, all row-major with the given leading dimensions;
    /// split over the worker threads when large enough. Not to be called from inside a `Parallel` job
    /// (use `serialGemm` there).
    @inline(__always)
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let parts = Parallel.threads
        guard parts > 1, m * n * k >= minimumSplitWork, max(m, n) >= parts * minimumBlock else {
            serialGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                       b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        if n >= m {
            // Column blocks of C: columns of op(B).
            Parallel.forParts(parts) { t in
                let j0 = blockStart(t, parts: parts, count: n), j1 = blockStart(t + 1, parts: parts, count: n)
                guard j1 > j0 else { return }
                serialGemm(transA: transA, transB: transB, m: m, n: j1 - j0, k: k, alpha: alpha, a: a, lda: lda,
                           b: transB ? b + j0 * ldb : b + j0, ldb: ldb, beta: beta, c: c + j0, ldc: ldc)
            }
        } else {
            // Row blocks of C: rows of op(A).
            Parallel.forParts(parts) { t in
                let i0 = blockStart(t, parts: parts, count: m), i1 = blockStart(t + 1, parts: parts, count: m)
                guard i1 > i0 else { return }
                serialGemm(transA: transA, transB: transB, m: i1 - i0, n: n, k: k, alpha: alpha,
                           a: transA ? a + i0 : a + i0 * lda, lda: lda, b: b, ldb: ldb, beta: beta,
                           c: c + i0 * ldc, ldc: ldc)
            }
        }
    }

    /// One single-threaded sgemm on the calling thread.
    @inline(__always)
    public static func serialGemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb),
                    beta, c, blasint(ldc))
    }

    /// Below this many multiply-adds a product stays on one thread (a wake-up costs more than it saves).
    static let minimumSplitWork = 1 << 18
    /// Blocks are multiples of 16 rows or columns (one AVX-512 register of floats), so each thread's
    /// block keeps the kernel's full-width tiles.
    static let minimumBlock = 16

    /// Where block t of `parts` starts, in multiples of `minimumBlock` (the last block takes the rest).
    @inline(__always)
    static func blockStart(_ t: Int, parts: Int, count: Int) -> Int {
        if t >= parts { return count }
        let units = (count + minimumBlock - 1) / minimumBlock
        return min(count, units * t / parts * minimumBlock)
    }

    /// Sets this process's (one rank's) compute threads: dann-dist's pool gets `count`, OpenBLAS one.
    public static func setThreads(_ count: Int) {
        openblas_set_num_threads(1)
        Parallel.threads = max(1, count)
    }

    /// This process's compute threads (`setThreads`).
    public static var threads: Int { Parallel.threads }
}
