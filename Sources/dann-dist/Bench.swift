import ArgumentParser
import DANN
import Foundation

/// `dann-dist bench`: img/s, ms/step by phase, GFLOP/s and the fraction of the sgemm peak; with `--allreduce`,
/// the gradient reduction's latency and bandwidth instead (BenchAllreduce.swift).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Time the training step on random inputs, or (--allreduce, under mpirun) the allreduce.")

    @Option(help: "Network: seed, small, small-bn or seed-bn.") var arch = "seed"
    @Option(parsing: .unconditional, help: "Source images per step (and as many target images).") var batchSize = 128
    @Option(parsing: .unconditional, help: "Timed steps.") var steps = 10
    @Option(parsing: .unconditional, help: "Untimed steps first.") var warmup = 2
    @Option(parsing: .unconditional, help: "Compute threads (default: OPENBLAS_NUM_THREADS, else the CPUs this process may use).") var threads: Int?
    @Option(parsing: .unconditional, help: "Side of the square sgemm that measures the peak (0: skip).") var peakSize = 2048
    @Flag(help: "Time with the main thread's CPU clock (steady on a shared machine; meaningful with --threads 1).")
    var threadClock = false
    @Option(parsing: .unconditional, help: "Floats per chunk of a convolution's column matrix (tuning; default: the layer's own).")
    var convChunk: Int?
    @Flag(help: "Print one JSON object.") var json = false

    @Flag(help: "Time the allreduce over a sweep of message sizes instead (run under mpirun -np N, N ≥ 2).")
    var allreduce = false
    @Option(parsing: .unconditional, help: "--allreduce: smallest message in bytes (default 4).") var minBytes: Int?
    @Option(parsing: .unconditional, help: "--allreduce: largest message in bytes (default 134217728 = 128 MiB).") var maxBytes: Int?
    @Option(parsing: .unconditional, help: "--allreduce: timed repetitions per size (default 10; the median is reported).")
    var repetitions: Int?
    @Flag(help: "--allreduce: time the non-blocking start + wait that gradient buckets use.") var nonblocking = false
    @Option(parsing: .unconditional, help: "--allreduce: a second fit over the sizes from this many bytes up (default 33554432).")
    var largeBytes: Int?

    func run() throws {
        if allreduce { return try runAllreduce() }
        if minBytes != nil || maxBytes != nil || repetitions != nil || nonblocking || largeBytes != nil {
            throw ValidationError("--min-bytes, --max-bytes, --repetitions, --large-bytes and --nonblocking need --allreduce")
        }
        let options = Benchmark.Options(architecture: try Architecture.named(arch), batchSize: batchSize, steps: steps,
                                        warmup: warmup, threads: threads, peakSize: peakSize,
                                        threadClock: threadClock, convChunkFloats: convChunk)
        let result = try Benchmark.run(options)
        print(json ? result.json : summary(result))
    }

    private func summary(_ r: Benchmark.Result) -> String {
        func f(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }
        var lines = [
            "arch \(r.architecture)  batch \(r.batchSize)+\(r.batchSize)  threads \(r.threads) (\(r.kernels) kernels, conv \(r.convolutionKernels), winograd \(r.winogradKernels))  steps \(r.steps)",
            "  \(f(r.stepSeconds * 1000)) ms/step  \(f(r.imagesPerSecond)) img/s  \(f(r.gflops)) GFLOP/s"
                + "  (\(f(r.flopsPerStep / 1e9, 2)) GFLOP/step)",
            "  sgemm peak \(f(r.sgemmPeakGFLOPS)) GFLOP/s  fraction of peak \(f(r.fractionOfPeak, 3))",
            "  phases (ms/step):",
        ]
        for p in r.phases { lines.append("    " + p.name.padding(toLength: 22, withPad: " ", startingAt: 0) + f(p.milliseconds, 2)) }
        lines.append("  layers (ms/step):")
        for p in r.layers where p.milliseconds >= 0.05 {
            lines.append("    " + p.name.padding(toLength: 30, withPad: " ", startingAt: 0) + f(p.milliseconds, 2))
        }
        return lines.joined(separator: "\n")
    }
}
