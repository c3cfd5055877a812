#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `dann-dist bench`: times the full DANN step (computeGradients + SGD) on random inputs and compares
/// its arithmetic rate with the sgemm peak measured in the same process.
public enum Benchmark {
    public struct Options: Equatable, Sendable {
        public var architecture: Architecture
        /// B: source images per step (and target images), so a step sees 2B images.
        public var batchSize: Int
        public var steps: Int
        public var warmup: Int
        /// Compute threads (`BLAS.setThreads`); nil leaves the current setting.
        public var threads: Int?
        /// Side of the square sgemm that measures the peak; 0 skips the measurement.
        public var peakSize: Int
        public var seed: UInt64
        /// Time steps and layers with the calling thread's CPU clock instead of wall time: on a shared
        /// machine it leaves out the time other processes hold the core, so A/B comparisons at one BLAS
        /// thread are steady (with more threads it misses the workers' share).
        public var threadClock: Bool
        /// Overrides every convolution's `chunkFloats` (for tuning the chunk size on a given machine).
        public var convChunkFloats: Int?

        public init(architecture: Architecture = .seed, batchSize: Int = 128, steps: Int = 10, warmup: Int = 2,
                    threads: Int? = nil, peakSize: Int = 2048, seed: UInt64 = 1, threadClock: Bool = false,
                    convChunkFloats: Int? = nil) {
            self.architecture = architecture
            self.batchSize = batchSize
            self.steps = steps
            self.warmup = warmup
            self.threads = threads
            self.peakSize = peakSize
            self.seed = seed
            self.threadClock = threadClock
            self.convChunkFloats = convChunkFloats
        }
    }

    /// Milliseconds per step in one part of the step.
    public struct Phase: Equatable, Sendable {
        public var name: String
        public var milliseconds: Double
    }

    public struct Result: Equatable, Sendable {
        public var architecture: String
        public var batchSize: Int
        public var steps: Int
        public var threads: Int
        /// OpenBLAS's kernel set (see `BLASKernels`).
        public var kernels: String = BLASKernels.loaded
        /// The convolutions' kernels: "avx512"/"avx2" (direct, Sources/CConvKernels) or "blas" (im2col + sgemm).
        public var convolutionKernels: String = Conv2D.defaultKernelsName
        /// The 5×5 layers' Winograd kernels: "avx512", "avx2" or "off" (see `WinogradConvolution`).
        public var winogradKernels: String = Conv2D.defaultWinogradName
        /// Mean wall time of one timed step.
        public var stepSeconds: Double
        /// 2B images (source + target) per step over the step time.
        public var imagesPerSecond: Double
        public var flopsPerStep: Double
        public var gflops: Double
        public var sgemmPeakGFLOPS: Double
        public var fractionOfPeak: Double
        /// extractor_forward, heads (C and D forward + backward, GRL, losses), extractor_backward, optimizer.
        public var phases: [Phase]
        /// Per-layer forward and backward milliseconds per step, e.g. "E.0 Conv2D forward".
        public var layers: [Phase]
        /// Floats in the gradient arena: what an allreduce of the gradient moves, × 4 bytes.
        public var parameters: Int = 0
        /// When backward hands each gradient range to the reduction (see `GradientReady`), in that order.
        public var gradientReady: [GradientReady] = []
        /// Batch norm's blocking reductions of its statistics per step (a latency each under MPI) and the
        /// Doubles they carry in all.
        public var statisticsReductions: Int = 0
        public var statisticsDoubles: Int = 0
    }

    /// A gradient range that backward reported final (`DANNModel.onGradientsReady`): milliseconds after the
    /// step's `computeGradients` began (mean over the timed steps) and its size in floats. A scale model
    /// replays these to see how much of a bucketed allreduce can hide behind the rest of backward.
    public struct GradientReady: Equatable, Sendable {
        public var milliseconds: Double
        public var floats: Int
    }

    public static func run(_ options: Options) throws -> Result {
        guard options.batchSize > 0, options.steps > 0, options.warmup >= 0 else {
            throw DANNError("bench: --batch-size and --steps must be positive and --warmup not negative")
        }
        if let threads = options.threads {
            guard threads > 0 else { throw DANNError("bench: --threads must be positive") }
            BLAS.setThreads(threads)
        }
        LayerProfiler.clock = options.threadClock ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC
        defer { LayerProfiler.clock = CLOCK_MONOTONIC }
        let arch = options.architecture, b = options.batchSize
        let model = try DANNModel(architecture: arch)
        model.initialize(seed: options.seed)
        if let chunk = options.convChunkFloats {
            for case let conv as Conv2D in model.extractor.layers { conv.chunkFloats = chunk }
        }
        let sgd = SGD(count: model.parameterCount)
        let schedules = Schedules()
        // Batch norm's reductions counted, not performed: one process's sums are already the global ones.
        var statisticsReductions = 0, statisticsDoubles = 0
        for (_, norm) in model.batchNorms {
            norm.reduceSums = { _, count in statisticsReductions += 1; statisticsDoubles += count }
        }
        var stepStart = 0.0, ready: [GradientReady] = []
        model.onGradientsReady = { range in
            ready.append(GradientReady(milliseconds: 1000 * (LayerProfiler.now() - stepStart), floats: range.count))
        }

        // Random pixels in [0, 1) and labels, from the counter RNG so every run sees the same batch.
        let images = FloatBuffer(capacity: 2 * b * model.imageSize)
        let labels = AlignedBuffer<Int32>(capacity: b)
        let key = CounterRNG.key(seed: options.seed, 0xBE4C, 0)
        for i in 0..<2 * b * model.imageSize { images.pointer[i] = CounterRNG.uniform(key: key, element: UInt64(i)) }
        for i in 0..<b { labels.pointer[i] = Int32(CounterRNG.mix(key ^ UInt64(i)) % 10) }
        let batch = DANNModel.Batch(images: images.pointer, labels: labels.pointer, sourceCount: b, targetCount: b, globalBatch: b)

        let total = options.warmup + options.steps
        func step(_ s: Int) -> (gradients: Double, optimizer: Double) {
            let p = Schedules.progress(step: s, totalSteps: total)
            let t0 = LayerProfiler.now()
            stepStart = t0
            model.computeGradients(batch, lambda: Float(schedules.lambda(progress: p)), step: s, seed: options.seed)
            let t1 = LayerProfiler.now()
            sgd.step(parameters: model.arena.parameters, gradients: model.arena.gradients,
                     learningRate: Float(schedules.learningRate(progress: p)))
            return (t1 - t0, LayerProfiler.now() - t1)
        }
        for s in 0..<options.warmup { _ = step(s) }
        ready.removeAll()
        statisticsReductions = 0
        statisticsDoubles = 0

        let extractorLayers = model.extractor.layers
        let headLayers = [model.gradientReversal] + model.classifier.layers + model.discriminator.layers
        let profiler = LayerProfiler(layers: extractorLayers + headLayers)
        LayerProfiler.active = profiler
        defer { LayerProfiler.active = nil }
        var gradientSeconds = 0.0, optimizerSeconds = 0.0
        let start = LayerProfiler.now()
        for s in options.warmup..<total {
            let (g, o) = step(s)
            gradientSeconds += g
            optimizerSeconds += o
        }
        let elapsed = LayerProfiler.now() - start
        LayerProfiler.active = nil

        let n = Double(options.steps)
        let (ef, eb) = profiler.seconds(in: extractorLayers)
        let phases = [
            Phase(name: "extractor_forward", milliseconds: 1000 * ef / n),
            Phase(name: "heads", milliseconds: 1000 * (gradientSeconds - ef - eb) / n),
            Phase(name: "extractor_backward", milliseconds: 1000 * eb / n),
            Phase(name: "optimizer", milliseconds: 1000 * optimizerSeconds / n),
        ]
        var layerPhases: [Phase] = []
        for (i, layer) in profiler.layers.enumerated() {
            let branch = i < extractorLayers.count ? "E" : "H"
            let name = "\(branch)\(i < extractorLayers.count ? i : i - extractorLayers.count) \(type(of: layer))"
            layerPhases.append(Phase(name: "\(name) forward", milliseconds: 1000 * profiler.forwardSeconds[i] / n))
            layerPhases.append(Phase(name: "\(name) backward", milliseconds: 1000 * profiler.backwardSeconds[i] / n))
        }

        let stepSeconds = elapsed / n
        // Every step reports the same ranges in the same order; average their times over the steps.
        let perStep = ready.count / options.steps
        let gradientReady = (0..<perStep).map { i in
            GradientReady(milliseconds: stride(from: i, to: ready.count, by: perStep).map { ready[$0].milliseconds }.reduce(0, +) / n,
                          floats: ready[i].floats)
        }
        let flops = StepFLOPs(architecture: arch, batch: b).total
        let gflops = flops / stepSeconds / 1e9
        let peak = options.peakSize > 0 ? sgemmPeak(size: options.peakSize) : 0
        return Result(architecture: arch.name, batchSize: b, steps: options.steps, threads: BLAS.threads,
                      stepSeconds: stepSeconds, imagesPerSecond: Double(2 * b) / stepSeconds,
                      flopsPerStep: flops, gflops: gflops, sgemmPeakGFLOPS: peak,
                      fractionOfPeak: peak > 0 ? gflops / peak : 0, phases: phases, layers: layerPhases,
                      parameters: model.parameterCount, gradientReady: gradientReady,
                      statisticsReductions: statisticsReductions / options.steps,
                      statisticsDoubles: statisticsDoubles / options.steps)
    }

    /// GFLOP/s of the best of `repeats` square size³ sgemms (after one untimed call that warms the
    /// thread pool and the pages).
    public static func sgemmPeak(size n: Int = 2048, repeats: Int = 3) -> Double {
        let a = FloatBuffer(capacity: n * n), b = FloatBuffer(capacity: n * n), c = FloatBuffer(capacity: n * n)
        for i in 0..<n * n {
            a.pointer[i] = Float(i % 17) * 0.01
            b.pointer[i] = Float(i % 13) * 0.01
        }
        var best = Double.infinity
        for r in 0...repeats {
            let t0 = LayerProfiler.now()
            BLAS.gemm(transA: false, transB: false, m: n, n: n, k: n, a: a.pointer, lda: n, b: b.pointer, ldb: n,
                      c: c.pointer, ldc: n)
            let t = LayerProfiler.now() - t0
            if r > 0 { best = min(best, t) }
        }
        return 2 * Double(n) * Double(n) * Double(n) / best / 1e9
    }
}

extension Benchmark.Result: Encodable {
    private enum CodingKeys: String, CodingKey {
        case architecture = "arch", batchSize = "batch_size", steps, threads, kernels = "blas_kernels"
        case convolutionKernels = "conv_kernels", winogradKernels = "winograd_kernels"
        case imagesPerSecond = "images_per_s", stepSeconds = "step_s", flopsPerStep = "flops_per_step", gflops
        case sgemmPeakGFLOPS = "sgemm_peak_gflops", fractionOfPeak = "fraction_of_peak"
        case phases = "phases_ms", layers = "layers_ms", parameters
        case gradientReady = "gradient_ready", statisticsReductions = "statistics_allreduces_per_step"
        case statisticsDoubles = "statistics_doubles_per_step"
    }

    private enum ReadyKeys: String, CodingKey { case milliseconds = "ms", floats }

    /// The keys above; a number that is not finite is `null`, and phases and layers are objects of name → ms.
    public func encode(to encoder: Encoder) throws {
        func number(_ x: Double) -> Double? { x.isFinite ? x : nil }
        func object(_ phases: [Benchmark.Phase]) -> [String: Double?] {
            Dictionary(phases.map { ($0.name, number($0.milliseconds)) }, uniquingKeysWith: { first, _ in first })
        }
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(architecture, forKey: .architecture)
        try container.encode(batchSize, forKey: .batchSize)
        try container.encode(steps, forKey: .steps)
        try container.encode(threads, forKey: .threads)
        try container.encode(kernels, forKey: .kernels)
        try container.encode(convolutionKernels, forKey: .convolutionKernels)
        try container.encode(winogradKernels, forKey: .winogradKernels)
        // encode, not encodeIfPresent: nil is written as null, so every key is always there.
        try container.encode(number(imagesPerSecond), forKey: .imagesPerSecond)
        try container.encode(number(stepSeconds), forKey: .stepSeconds)
        try container.encode(number(flopsPerStep), forKey: .flopsPerStep)
        try container.encode(number(gflops), forKey: .gflops)
        try container.encode(number(sgemmPeakGFLOPS), forKey: .sgemmPeakGFLOPS)
        try container.encode(number(fractionOfPeak), forKey: .fractionOfPeak)
        try container.encode(object(phases), forKey: .phases)
        try container.encode(object(layers), forKey: .layers)
        try container.encode(parameters, forKey: .parameters)
        var list = container.nestedUnkeyedContainer(forKey: .gradientReady)
        for range in gradientReady {
            var entry = list.nestedContainer(keyedBy: ReadyKeys.self)
            try entry.encode(number(range.milliseconds), forKey: .milliseconds)
            try entry.encode(range.floats, forKey: .floats)
        }
        try container.encode(statisticsReductions, forKey: .statisticsReductions)
        try container.encode(statisticsDoubles, forKey: .statisticsDoubles)
    }

    /// One JSON line (keys sorted): arch, batch_size, steps, threads, blas_kernels, conv_kernels, images_per_s, step_s,
    /// flops_per_step, gflops, sgemm_peak_gflops, fraction_of_peak, phases_ms, layers_ms, parameters,
    /// gradient_ready ([{ms, floats}] in backward order), statistics_allreduces_per_step and
    /// statistics_doubles_per_step.
    public var json: String { JSONText.encode(self) }
}
