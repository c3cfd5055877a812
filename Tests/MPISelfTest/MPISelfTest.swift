import ArgumentParser
import DANN
import Foundation

/// `mpi-selftest`: exercises every collective of the communicator with rank-dependent data; rank 0 prints one
/// JSON line that CommunicatorMPITests compares with values it computes itself. A test harness (and a check of a
/// cluster's MPI, `mpirun -np N .build/release/mpi-selftest`), built beside dann-dist but not part of it.
@main
struct MPISelfTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mpi-selftest",
        abstract: "Check the communicator's collectives (one JSON line from rank 0)."
    )

    @Option(help: "Floats in the allreduce test buffer.") var count = 10_007
    @Option(parsing: .unconditional, help: "Buckets for the non-blocking allreduce (startAllreduceSum).") var buckets = 5
    @Option(parsing: .unconditional, help: "Largest element count per MPI call (to exercise chunking of big buffers).") var chunk: Int?
    @Flag(help: "Use MPI even without a launcher (MPI singleton).") var mpi = false
    @Option(parsing: .unconditional, help: "This rank calls abort while the others wait in a barrier.") var abortRank: Int?
    @Option(parsing: .unconditional, help: "Also time allreduces of this many floats (e.g. 33372108, the seed network).") var benchCount: Int?
    @Option(parsing: .unconditional, help: "Timed repetitions for --bench-count.") var benchRepeats = 10
    @Option(parsing: .unconditional, help: "Buckets for the timed non-blocking allreduce.") var benchBuckets = 8
    @Option(help: "Also sum a 16-bit pattern (bf16 or fp16) with the 16-bit allreduce, blocking and in buckets.") var half: String?
    @Option(help: "Where rank 0 writes the blocking, then the bucketed 16-bit sums, widened to little-endian Float32 (with --half).") var halfOut: String?
    @Option(help: "Also run the shared-memory update (--allreduce shared) over this many parameters, one rank slow each round.") var sharedUpdate: Int?
    @Option(help: "Where rank 0 writes the parameters after the shared update's rounds, little-endian Float32 (with --shared-update).") var sharedOut: String?

    func run() throws {
        let comm: Communicator = mpi ? MPICommunicator() : makeCommunicator()
        if let chunk, let mpiComm = comm as? MPICommunicator { mpiComm.maximumCountPerCall = chunk }

        if let abortRank {
            if comm.rank == abortRank { comm.abort("mpi-selftest: rank \(abortRank) aborting as requested") }
            comm.barrier()
        }

        var report = SelfTestReport(comm: comm, count: count, buckets: buckets)
        if let half {
            guard let format = HalfFormat(rawValue: half) else { throw ValidationError("--half must be bf16 or fp16, not \(half)") }
            report.half = HalfSumCheck(comm: comm, count: count, buckets: buckets, format: format)
            if comm.rank == 0, let halfOut, let check = report.half {
                let widened = (check.blocking + check.bucketed).map { HalfFloat.widen($0, format).bitPattern.littleEndian }
                try widened.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: halfOut)) }
            }
        }
        if let sharedUpdate {
            report.shared = try SharedUpdateCheck(comm: comm, count: sharedUpdate)
            if comm.rank == 0, let sharedOut, let check = report.shared {
                let bits = check.parameters.map { $0.bitPattern.littleEndian }
                try bits.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: sharedOut)) }
            }
        }
        if let benchCount {
            report.bench = AllreduceBench(comm: comm, count: benchCount, repeats: benchRepeats, buckets: benchBuckets)
        }
        let perRank = comm.allgather(Array(report.rankRecord.utf8)).map { String(decoding: $0, as: UTF8.self) }
        if comm.rank == 0 {
            let line = report.summary(perRank: perRank)
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
        comm.finalize()
    }
}

/// The collectives' results on this rank.
private struct SelfTestReport {
    let comm: Communicator
    let count: Int
    let buckets: Int
    var floatHead: [Float] = []
    var floatChecksum = 0.0
    var bucketsEqualBlocking = false
    var doubleSums: [Double] = []
    var doubleMax: [Double] = []
    var broadcastChecksum = 0
    var roundingHashBlocking = ""
    var roundingHashBucketed = ""
    var roundingMaxRelativeError = 0.0
    var bench: AllreduceBench?
    var half: HalfSumCheck?
    var shared: SharedUpdateCheck?

    init(comm: Communicator, count: Int, buckets: Int) {
        self.comm = comm
        self.count = count
        self.buckets = max(1, buckets)
        let rank = comm.rank

        // Small integers keep every sum exact in Float, so the test can demand equality.
        let pattern = (0..<count).map { Float((rank + 1) * ($0 % 7 + 1)) }
        var blocking = pattern
        blocking.withUnsafeMutableBufferPointer { comm.allreduceSum($0.baseAddress!, count: count) }
        floatHead = Array(blocking.prefix(8))
        floatChecksum = blocking.reduce(0.0) { $0 + Double($1) }

        var bucketed = pattern
        bucketed.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            var pending: [PendingReduction] = []
            var start = 0
            for bucket in 0..<self.buckets {
                let end = count * (bucket + 1) / self.buckets
                pending.append(comm.startAllreduceSum(base + start, count: end - start))
                start = end
            }
            // Nudge, wait for the first bucket alone, then the rest together, as a trainer overlapping backward would.
            for reduction in pending { comm.progress(reduction) }
            if let first = pending.first { comm.wait(first) }
            comm.waitAll(pending)
        }
        bucketsEqualBlocking = bucketed == blocking

        // Values whose sums round: every rank must still end with the same bits (or the ranks' weights drift).
        func roundingPattern(_ r: Int) -> [Float] { (0..<count).map { Float(r + 1) * 0.1 + Float($0 % 1000) * 1.0e-3 + 1 / Float(r + 3) } }
        var rounding = roundingPattern(rank)
        rounding.withUnsafeMutableBufferPointer { comm.allreduceSum($0.baseAddress!, count: count) }
        roundingHashBlocking = Self.bitHash(rounding)
        let exact = (0..<comm.size).map(roundingPattern).reduce([Double](repeating: 0, count: count)) { sum, values in
            zip(sum, values).map { $0 + Double($1) }
        }
        roundingMaxRelativeError = zip(rounding, exact).map { abs(Double($0) - $1) / abs($1) }.max() ?? 0
        var roundingBucketed = roundingPattern(rank)
        roundingBucketed.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            let pending = (0..<self.buckets).map { bucket in
                comm.startAllreduceSum(base + count * bucket / self.buckets,
                                       count: count * (bucket + 1) / self.buckets - count * bucket / self.buckets)
            }
            comm.waitAll(pending)
        }
        roundingHashBucketed = Self.bitHash(roundingBucketed)

        doubleSums = [Double(rank) + 0.25, Double(rank * rank), 1e10 + Double(rank)]
        doubleSums.withUnsafeMutableBufferPointer { comm.allreduceSum($0.baseAddress!, count: $0.count) }
        doubleMax = [Double(rank), 5 - Double(rank)]
        doubleMax.withUnsafeMutableBufferPointer { comm.allreduceMax($0.baseAddress!, count: $0.count) }

        var bytes = (0..<1000).map { rank == 0 ? UInt8(truncatingIfNeeded: $0 * 31 + 7) : 0 }
        bytes.withUnsafeMutableBytes { comm.broadcast($0.baseAddress!, bytes: $0.count, root: 0) }
        broadcastChecksum = bytes.enumerated().reduce(0) { $0 + Int($1.element) * ($1.offset + 1) }
    }

    /// FNV-1a over the values' bit patterns, as hex: equal hashes mean (almost surely) bitwise-equal buffers.
    static func bitHash(_ values: [Float]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for value in values {
            hash ^= UInt64(value.bitPattern)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return String(hash, radix: 16)
    }

    /// This rank's own facts, gathered on rank 0.
    var rankRecord: String {
        let host = comm.hostname.replacingOccurrences(of: "\"", with: "")
        return "{\"rank\":\(comm.rank),\"local_rank\":\(comm.localRank),\"local_size\":\(comm.localSize),"
            + "\"hostname\":\"\(host)\",\"float_checksum\":\(floatChecksum),"
            + "\"buckets_equal_blocking\":\(bucketsEqualBlocking),\"broadcast_checksum\":\(broadcastChecksum),"
            + "\"rounding_hash_blocking\":\"\(roundingHashBlocking)\",\"rounding_hash_bucketed\":\"\(roundingHashBucketed)\","
            + "\"rounding_max_relative_error\":\(roundingMaxRelativeError),"
            + "\"threads_per_rank\":\(defaultThreadsPerRank(localSize: comm.localSize))"
            + (half.map { ",\"half_hash_blocking\":\"\($0.hashBlocking)\",\"half_hash_bucketed\":\"\($0.hashBucketed)\","
                    + "\"half_bucketed_equals_blocking\":\($0.bucketedEqualsBlocking)" } ?? "")
            + (shared.map { ",\"shared_claims\":[" + $0.claims.map(String.init).joined(separator: ",") + "]" } ?? "")
            + "}"
    }

    func summary(perRank: [String]) -> String {
        let kind = comm is MPICommunicator ? "mpi" : "single"
        func list<T>(_ values: [T]) -> String { "[" + values.map { "\($0)" }.joined(separator: ",") + "]" }
        var line = "{\"communicator\":\"\(kind)\",\"size\":\(comm.size),\"float_count\":\(count),\"buckets\":\(buckets),"
            + "\"float_head\":\(list(floatHead)),\"double_sums\":\(list(doubleSums)),\"double_max\":\(list(doubleMax)),"
            + "\"ranks\":[\(perRank.joined(separator: ","))]"
        if let bench { line += ",\"bench\":\(bench.json)" }
        return line + "}"
    }
}

/// The 16-bit allreduce of `--allreduce-dtype`: each rank rounds its pattern (`HalfSumCheck.pattern`, which
/// CommunicatorMPITests recomputes) to `format` and sums it over the ranks, once in one blocking call and once in
/// `buckets` non-blocking ones.
private struct HalfSumCheck {
    var blocking: [UInt16] = []
    var bucketed: [UInt16] = []
    var hashBlocking = ""
    var hashBucketed = ""
    var bucketedEqualsBlocking = false

    /// Rank r's values: mixed signs, magnitudes from 2⁻⁶ to 2⁵, so sums round at every scale (and stay finite in fp16).
    static func pattern(rank: Int, count: Int) -> [Float] {
        (0..<count).map { i in Float(sin(Double(i) * 0.37 + Double(rank)) * pow(2, Double((i * 7 + rank * 3) % 12 - 6))) }
    }

    init(comm: Communicator, count: Int, buckets: Int, format: HalfFormat) {
        let values = Self.pattern(rank: comm.rank, count: count)
        var rounded = [UInt16](repeating: 0, count: count)
        HalfFloat.narrow(values, into: &rounded, count: count, format: format)
        blocking = rounded
        blocking.withUnsafeMutableBufferPointer { comm.allreduceSum($0.baseAddress!, count: count, format: format) }
        bucketed = rounded
        bucketed.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!, parts = max(1, buckets)
            let pending = (0..<parts).map { bucket in
                comm.startAllreduceSum(base + count * bucket / parts, count: count * (bucket + 1) / parts - count * bucket / parts,
                                       format: format)
            }
            comm.waitAll(pending)
        }
        bucketedEqualsBlocking = bucketed == blocking
        hashBlocking = SelfTestReport.bitHash(blocking.map { Float(bitPattern: UInt32($0)) })
        hashBucketed = SelfTestReport.bitHash(bucketed.map { Float(bitPattern: UInt32($0)) })
    }
}

/// `SharedArenas.update` (the `--allreduce shared` step) over `rounds` rounds of SGD on `count` parameters, with one
/// rank slow in each (round k: rank size − 1 − k mod size): it writes its gradient (`gradient(rank:round:count:)`,
/// which CommunicatorMPITests recomputes) range by range from the top of the arena down, sleeping before it makes
/// each range final, as a backward would, while the other ranks are already updating. The parameters must come
/// out as one optimizer stepping the rank-order sums; `claims` shows who updated what.
private struct SharedUpdateCheck {
    static let rounds = 3, ranges = 20, learningRate: Float = 0.1
    var parameters: [Float] = []
    /// Blocks this rank updated, per round.
    var claims: [Int] = []

    static func gradient(rank: Int, round: Int, count: Int) -> [Float] {
        (0..<count).map { i in Float(sin(Double(i) * 0.37 + Double(rank) + 10 * Double(round))) * 0.01 }
    }

    static func start(count: Int) -> [Float] { (0..<count).map { Float(cos(Double($0) * 0.11)) } }

    init(comm: Communicator, count: Int) throws {
        guard let shared = try SharedArenas.make(comm, count: count, stateBuffers: 1) else {
            throw ValidationError("--shared-update needs at least two ranks on one node")
        }
        let (weights, gradients) = shared.storage
        if comm.rank == 0 { Self.start(count: count).withUnsafeBufferPointer { weights.update(from: $0.baseAddress!, count: count) } }
        let optimizer = SGD(count: count, momentum: 0.9, weightDecay: 1e-3, state: shared.optimizerState)
        shared.synchronize()
        for round in 0..<Self.rounds {
            let values = Self.gradient(rank: comm.rank, round: round, count: count)
            if comm.rank == comm.size - 1 - round % comm.size {
                for part in (0..<Self.ranges).reversed() {
                    let range = count * part / Self.ranges..<count * (part + 1) / Self.ranges
                    for i in range { gradients[i] = values[i] }
                    usleep(2_000)
                    shared.gradientsFinal(from: range.lowerBound)
                }
            } else {
                for i in 0..<count { gradients[i] = values[i] }
            }
            shared.update(optimizer, learningRate: Self.learningRate, clipNorm: nil)
            claims.append(shared.claimsTaken)
        }
        parameters = Array(UnsafeBufferPointer(start: weights, count: count))
    }
}

/// Times in-place allreduces of one big buffer: blocking versus the same buffer in buckets started back to
/// back. Each repetition's time is the slowest rank's; the report gives medians.
private struct AllreduceBench {
    let count: Int
    let buckets: Int
    var blockingMs: [Double] = []
    var bucketedMs: [Double] = []

    init(comm: Communicator, count: Int, repeats: Int, buckets: Int) {
        self.count = count
        self.buckets = max(1, buckets)
        var buffer = [Float](repeating: 1, count: count)
        buffer.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            func timed(_ body: () -> Void) -> Double {
                buffer.update(repeating: 1)   // keep values small and finite whatever the repetitions
                comm.barrier()
                let start = DispatchTime.now().uptimeNanoseconds
                body()
                var elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
                comm.allreduceMax(&elapsed, count: 1)
                return elapsed
            }
            let blocking = { comm.allreduceSum(base, count: count) }
            let bucketed = {
                var pending: [PendingReduction] = []
                for bucket in 0..<self.buckets {
                    let start = count * bucket / self.buckets, end = count * (bucket + 1) / self.buckets
                    pending.append(comm.startAllreduceSum(base + start, count: end - start))
                }
                comm.waitAll(pending)
            }
            _ = timed(blocking)   // warm-up: first touch of shared-memory segments
            _ = timed(bucketed)
            for _ in 0..<max(1, repeats) {
                blockingMs.append(timed(blocking))
                bucketedMs.append(timed(bucketed))
            }
        }
    }

    private static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    var json: String {
        func list(_ values: [Double]) -> String { "[" + values.map { String(format: "%.2f", $0) }.joined(separator: ",") + "]" }
        return "{\"count\":\(count),\"buckets\":\(buckets),"
            + "\"blocking_ms_median\":\(String(format: "%.2f", Self.median(blockingMs))),"
            + "\"bucketed_ms_median\":\(String(format: "%.2f", Self.median(bucketedMs))),"
            + "\"blocking_ms\":\(list(blockingMs)),\"bucketed_ms\":\(list(bucketedMs))}"
    }
}
