#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import COpenBLAS
import Foundation
import Synchronization

/// dann-dist's one pool of compute threads per process (rank): the GEMMs (`BLAS.gemm` splits C into
/// blocks), the convolutions' im2col + GEMM chunks and the memory-bound loops around them (pooling, ReLU,
/// normalisation) all run on it, while OpenBLAS itself stays single-threaded (see `BLAS`).
///
/// The helpers are persistent threads that poll, then sleep on a condition variable (created on first use), not
/// libdispatch, whose `concurrentPerform` made ~40 allocations per step. What remains at ≥ 2 threads is
/// one small box per call from `withoutActuallyEscaping` (all freed); with one thread nothing is allocated.
public enum Parallel {
    /// Below this many elements a wake-up costs more than it saves.
    public static let minimumWork = 1 << 16

    nonisolated(unsafe) private static var configured: Int?

    /// Threads of this process's pool: `BLAS.setThreads`, else OPENBLAS_NUM_THREADS, else the CPUs it may use.
    public static var threads: Int {
        get { configured ?? defaultThreads }
        set { _ = defaultThreads; configured = max(1, newValue) }
    }

    /// Also puts OpenBLAS on one thread, the first time anything asks how many threads there are.
    private static let defaultThreads: Int = {
        openblas_set_num_threads(1)
        if let text = ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"], let n = Int(text), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Calls `body` on contiguous, disjoint sub-ranges covering 0..<count (one per thread), and returns
    /// when all are done. `work` is the total number of elements touched, to decide whether to split.
    @inline(__always)
    public static func forRanges(_ count: Int, work: Int, _ body: (Range<Int>) -> Void) {
        let parts = min(threads, count)
        guard parts > 1, work >= minimumWork else {
            body(0..<count)
            return
        }
        WorkerPool.shared.run(parts: parts) { t in
            body(count * t / parts..<count * (t + 1) / parts)
        }
    }

    /// `forRanges` over the elements of `range` (one touch each): the sub-ranges are of `range`'s indices.
    @inline(__always)
    public static func forRanges(in range: Range<Int>, _ body: (Range<Int>) -> Void) {
        forRanges(range.count, work: range.count) { part in
            body((range.lowerBound + part.lowerBound)..<(range.lowerBound + part.upperBound))
        }
    }

    /// Calls `body(t)` for t in 0..<parts, part 0 on the calling thread and the others on the pool's
    /// helpers, and returns when all are done. Jobs do not nest: `body` must not start another.
    @inline(__always)
    public static func forParts(_ parts: Int, _ body: (Int) -> Void) {
        guard parts > 1 else {
            if parts == 1 { body(0) }
            return
        }
        WorkerPool.shared.run(parts: parts, body)
    }
}

/// A fixed set of helper threads that run part i (1..<parts) of a job while the caller runs part 0.
/// One job at a time, from one calling thread (the training loop).
///
/// Idle helpers, and the caller waiting for them, poll for `spinNanoseconds` before sleeping on a condition
/// variable, as OpenMP runtimes do (GOMP_SPINCOUNT, KMP_BLOCKTIME): a helper that sleeps between the ~100 jobs
/// of a step costs a wake-up per job, and a halted virtual CPU took long enough to wake that at 2 threads the
/// split of a small layer ran slower than one thread (small-bn's 100-wide linear layers: 0.07 → 0.40 ms).
/// Jobs follow each other within microseconds inside a step, so helpers seldom reach the condition variable.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()
    static let spinNanoseconds: UInt64 = 200_000

    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let done = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var helpers = 0
    /// The current job: its number (bits 8 and up) and part count (low 8 bits) in one word, so that a helper
    /// reads both at once. Published with release ordering after `task` is set.
    private let posted = Atomic<Int>(0)
    /// Helpers yet to finish the current job's parts.
    private let remaining = Atomic<Int>(0)
    private var task: Job?

    /// The closure in a concrete struct: an optional of a bare function type would store it behind a
    /// reabstraction thunk, allocated on every job.
    private struct Job {
        let run: (Int) -> Void
    }

    private init() {
        pthread_mutex_init(lock, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(done, nil)
    }

    func run(parts: Int, _ body: (Int) -> Void) {
        precondition(parts < 256, "at most 255 threads")
        startHelpers(parts - 1)
        withoutActuallyEscaping(body) { body in
            task = Job(run: body)
            remaining.store(parts - 1, ordering: .relaxed)
            let job = (posted.load(ordering: .relaxed) >> 8 &+ 1) << 8 | parts
            // Under the lock, so a helper that found no new job under it is already waiting for the broadcast.
            pthread_mutex_lock(lock)
            posted.store(job, ordering: .releasing)
            pthread_cond_broadcast(wake)
            pthread_mutex_unlock(lock)
            body(0)
            if !WorkerPool.poll({ remaining.load(ordering: .acquiring) == 0 }) {
                pthread_mutex_lock(lock)
                while remaining.load(ordering: .acquiring) > 0 { pthread_cond_wait(done, lock) }
                pthread_mutex_unlock(lock)
            }
            task = nil
        }
    }

    private func startHelpers(_ count: Int) {
        while helpers < count {
            helpers += 1
            // The helper starts from the current job, so the job posted right after this call is new to it
            // even if the thread is scheduled late.
            let context = UnsafeMutablePointer<(WorkerPool, Int, Int)>.allocate(capacity: 1)
            context.initialize(to: (self, helpers, posted.load(ordering: .relaxed)))
            var thread = pthread_t()
            let started = pthread_create(&thread, nil, { raw in
                let context = raw!.assumingMemoryBound(to: (WorkerPool, Int, Int).self)
                let (pool, index, job) = context.move()
                context.deallocate()
                pool.serve(index, from: job)
            }, context)
            precondition(started == 0, "cannot start a helper thread")
            pthread_detach(thread)
        }
    }

    private func serve(_ index: Int, from start: Int) -> Never {
        var seen = start
        while true {
            if !WorkerPool.poll({ posted.load(ordering: .acquiring) != seen }) {
                pthread_mutex_lock(lock)
                while posted.load(ordering: .acquiring) == seen { pthread_cond_wait(wake, lock) }
                pthread_mutex_unlock(lock)
            }
            seen = posted.load(ordering: .acquiring)
            // Not in this job: the caller does not wait for this helper, and may post the next job at any time.
            guard index < seen & 0xFF else { continue }
            invoke(index)
            if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                pthread_mutex_lock(lock)
                pthread_cond_signal(done)
                pthread_mutex_unlock(lock)
            }
        }
    }

    /// Whether `ready` became true within `spinNanoseconds` of polling.
    @inline(__always)
    private static func poll(_ ready: () -> Bool) -> Bool {
        if ready() { return true }
        let deadline = monotonicNanoseconds() &+ spinNanoseconds
        while true {
            for _ in 0..<64 where ready() { return true }
            if monotonicNanoseconds() >= deadline { return ready() }
        }
    }

    private static func monotonicNanoseconds() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
    }

    /// Runs part `index` of the current job; a separate call so the job's closure is released before
    /// the part is counted done.
    @inline(never)
    private func invoke(_ index: Int) {
        task?.run(index)
    }
}
