/// `dann-dist bench --allreduce`: times the communicator's in-place Float sum over a sweep of message sizes
/// and fits the ring's latency α and bandwidth β (docs/performance.md uses them in its scale model).
public enum AllreduceBenchmark {
    public struct Options: Equatable, Sendable {
        /// Smallest and largest message in bytes (multiples of 4: the buffer is Float); sizes double between.
        public var minBytes: Int
        public var maxBytes: Int
        /// Timed repetitions per size; the report keeps their median.
        public var repetitions: Int
        /// Time `startAllreduceSum` + `wait` (the trainer's buckets) instead of the blocking call.
        public var nonBlocking: Bool
        /// Wall time one repetition should last at least: a 4-byte sum takes microseconds, so a repetition
        /// repeats the call until it fills this, and the clock's and the barrier's own cost are spread out.
        public var repetitionSeconds: Double
        /// Sizes from this one up get a fit of their own: on the 2-core Xeon a shared-memory sum of 32 MiB and more
        /// took 2–5× longer per byte than one of 16 MiB (out of cache), and a 133 MB gradient or its 25 MB
        /// buckets are that large.
        public var largeBytes: Int

        public init(minBytes: Int = 4, maxBytes: Int = 128 << 20, repetitions: Int = 10, nonBlocking: Bool = false,
                    repetitionSeconds: Double = 0.002, largeBytes: Int = 32 << 20) {
            self.largeBytes = largeBytes
            self.minBytes = minBytes
            self.maxBytes = maxBytes
            self.repetitions = repetitions
            self.nonBlocking = nonBlocking
            self.repetitionSeconds = repetitionSeconds
        }

        /// Message sizes of the sweep: minBytes, doubling, up to and including maxBytes.
        public var sizes: [Int] {
            var sizes: [Int] = []
            var bytes = minBytes
            while bytes < maxBytes { sizes.append(bytes); bytes *= 2 }
            sizes.append(maxBytes)
            return sizes
        }

        /// The options' problem as one line naming the flag, or nil when they are usable.
        public var problem: String? {
            if minBytes < 4 || minBytes % 4 != 0 { return "--min-bytes must be a positive multiple of 4 (got \(minBytes))" }
            if maxBytes < minBytes || maxBytes % 4 != 0 {
                return "--max-bytes must be a multiple of 4 and at least --min-bytes (got \(maxBytes))"
            }
            if maxBytes > 1 << 34 { return "--max-bytes must be at most 16 GiB (got \(maxBytes))" }
            if repetitions < 1 || repetitions > 100_000 { return "--repetitions must be in 1...100000 (got \(repetitions))" }
            if largeBytes < 4 { return "--large-bytes must be at least 4 (got \(largeBytes))" }
            return nil
        }
    }

    /// One message size: the median, fastest and slowest repetition, each the slowest rank's mean per call.
    public struct Sample: Equatable, Sendable {
        public var bytes: Int
        /// Calls per repetition.
        public var iterations: Int
        public var medianSeconds: Double
        public var minSeconds: Double
        public var maxSeconds: Double
        public var ranks: Int

        /// bytes / time: how fast the buffer is summed, whatever the algorithm.
        public var algorithmicBandwidth: Double { Double(bytes) / medianSeconds }
        /// 2(n−1)/n · bytes / time: the bytes a ring moves per rank per second, comparable with a link's rate.
        public var busBandwidth: Double { LatencyBandwidthFit.busFactor(ranks: ranks) * algorithmicBandwidth }
    }

    public struct Result: Equatable, Sendable {
        public var ranks: Int
        /// Ranks sharing this node's memory (rank 0's node).
        public var localRanks: Int
        public var nonBlocking: Bool
        public var repetitions: Int
        public var samples: [Sample]
        /// α and β over all sizes; nil when nothing was measured.
        public var fit: LatencyBandwidthFit?
        /// α and β over the sizes from `largeBytes` up (nil with fewer than two of them): the β for big buffers.
        public var fitLarge: LatencyBandwidthFit?
        public var largeBytes: Int
    }

    /// Runs the sweep; a collective, so every rank calls it with the same options. Every rank gets the result.
    public static func run(_ options: Options, communicator: Communicator) throws -> Result {
        if let problem = options.problem { throw DANNError("bench --allreduce: \(problem)") }
        guard communicator.size > 1 else {
            throw DANNError("bench --allreduce needs at least 2 ranks: run it under mpirun -np N (N ≥ 2)")
        }
        try checkSum(communicator)
        let buffer = FloatBuffer(capacity: options.maxBytes / 4)
        // Zeros stay zeros under any number of sums (growing values would reach inf; denormals would be slow).
        buffer.pointer.update(repeating: 0, count: options.maxBytes / 4)

        func call(_ count: Int) {
            if options.nonBlocking {
                communicator.wait(communicator.startAllreduceSum(buffer.pointer, count: count))
            } else {
                communicator.allreduceSum(buffer.pointer, count: count)
            }
        }

        var samples: [Sample] = []
        for bytes in options.sizes {
            let count = bytes / 4
            // Warm-up call (first touch, connection set-up), then one to size the repetitions. The slowest
            // rank's time decides, so every rank repeats the call the same number of times.
            call(count)
            communicator.barrier()
            var probe = [clockSeconds()]
            call(count)
            probe[0] = clockSeconds() - probe[0]
            communicator.allreduceMax(&probe, count: 1)
            let iterations = max(1, min(1000, Int((options.repetitionSeconds / max(probe[0], 1e-9)).rounded(.up))))

            var times = [Double](repeating: 0, count: options.repetitions)
            for r in 0..<options.repetitions {
                communicator.barrier()
                let start = clockSeconds()
                for _ in 0..<iterations { call(count) }
                times[r] = (clockSeconds() - start) / Double(iterations)
            }
            communicator.allreduceMax(&times, count: times.count)
            times.sort()
            samples.append(Sample(bytes: bytes, iterations: iterations, medianSeconds: median(sorted: times),
                                  minSeconds: times[0], maxSeconds: times[times.count - 1], ranks: communicator.size))
        }
        let points = samples.map { (bytes: $0.bytes, seconds: $0.medianSeconds) }
        let large = points.filter { $0.bytes >= options.largeBytes }
        return Result(ranks: communicator.size, localRanks: communicator.localSize, nonBlocking: options.nonBlocking,
                      repetitions: options.repetitions, samples: samples,
                      fit: LatencyBandwidthFit.fit(ranks: communicator.size, samples: points),
                      fitLarge: large.count >= 2 ? LatencyBandwidthFit.fit(ranks: communicator.size, samples: large) : nil,
                      largeBytes: options.largeBytes)
    }

    /// One sum with known answer before anything is timed: a sweep over a broken transport would time garbage.
    private static func checkSum(_ communicator: Communicator) throws {
        var values = [Float](repeating: Float(communicator.rank + 1), count: 256)
        communicator.allreduceSum(&values, count: values.count)
        let n = communicator.size, expected = Float(n * (n + 1) / 2)
        if let wrong = values.first(where: { $0 != expected }) {
            throw DANNError("bench --allreduce: the sum over \(n) ranks came out \(wrong), expected \(expected)")
        }
    }

    /// The middle value of a sorted array (the mean of the two middle ones for an even count).
    static func median(sorted values: [Double]) -> Double {
        let mid = values.count / 2
        return values.count % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2
    }

    private static func clockSeconds() -> Double { LayerProfiler.now() }
}

extension AllreduceBenchmark.Result: Encodable {
    private enum CodingKeys: String, CodingKey {
        case ranks, localRanks = "local_ranks", nonBlocking = "nonblocking", repetitions, samples = "sizes", fit
        case fitLarge = "fit_large"
    }

    private enum SampleKeys: String, CodingKey {
        case bytes, iterations, medianSeconds = "median_s", minSeconds = "min_s", maxSeconds = "max_s"
        case algorithmicBandwidth = "algbw_bytes_per_s", busBandwidth = "busbw_bytes_per_s"
    }

    private enum FitKeys: String, CodingKey { case alpha = "alpha_s", beta = "beta_bytes_per_s", formula, fromBytes = "from_bytes" }

    /// Every key always present; a β that is not finite (time did not grow with size) is null.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(ranks, forKey: .ranks)
        try container.encode(localRanks, forKey: .localRanks)
        try container.encode(nonBlocking, forKey: .nonBlocking)
        try container.encode(repetitions, forKey: .repetitions)
        var list = container.nestedUnkeyedContainer(forKey: .samples)
        for sample in samples {
            var entry = list.nestedContainer(keyedBy: SampleKeys.self)
            try entry.encode(sample.bytes, forKey: .bytes)
            try entry.encode(sample.iterations, forKey: .iterations)
            try entry.encode(sample.medianSeconds, forKey: .medianSeconds)
            try entry.encode(sample.minSeconds, forKey: .minSeconds)
            try entry.encode(sample.maxSeconds, forKey: .maxSeconds)
            try entry.encode(sample.algorithmicBandwidth, forKey: .algorithmicBandwidth)
            try entry.encode(sample.busBandwidth, forKey: .busBandwidth)
        }
        for (fit, key, from) in [(fit, CodingKeys.fit, samples.first?.bytes ?? 0), (fitLarge, .fitLarge, largeBytes)] {
            guard let fit else { try container.encodeNil(forKey: key); continue }
            var entry = container.nestedContainer(keyedBy: FitKeys.self, forKey: key)
            try entry.encode(fit.alpha, forKey: .alpha)
            try entry.encode(fit.beta.isFinite ? fit.beta : nil, forKey: .beta)
            try entry.encode("t = alpha + 2(n-1)/n * bytes / beta", forKey: .formula)
            try entry.encode(from, forKey: .fromBytes)
        }
    }

    /// One JSON line, keys sorted: ranks, local_ranks, nonblocking, repetitions, sizes (bytes, iterations,
    /// median_s, min_s, max_s, algbw_bytes_per_s, busbw_bytes_per_s), fit and fit_large (alpha_s, beta_bytes_per_s,
    /// from_bytes: the smallest size fitted; null when there was nothing to fit).
    public var json: String { JSONText.encode(self) }
}
