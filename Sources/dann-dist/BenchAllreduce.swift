import ArgumentParser
import DANN
import Foundation

/// `dann-dist bench --allreduce`: the sweep of `AllreduceBenchmark`, printed by rank 0.
extension Bench {
    func runAllreduce() throws {
        var options = AllreduceBenchmark.Options(nonBlocking: nonblocking)
        if let minBytes { options.minBytes = minBytes }
        if let maxBytes { options.maxBytes = maxBytes }
        if let repetitions { options.repetitions = repetitions }
        if let largeBytes { options.largeBytes = largeBytes }
        // A bad flag is the same on every rank: say so before MPI starts, once.
        if let problem = options.problem { throw ValidationError(problem) }
        let communicator = makeCommunicator()
        let result: AllreduceBenchmark.Result
        do {
            result = try AllreduceBenchmark.run(options, communicator: communicator)
        } catch let error as DANNError {
            exitWithError(error.message, communicator: communicator)
        }
        if communicator.isRoot {
            print(json ? result.json : Self.table(result))
            fflush(nil)
        }
        communicator.finalize()
    }

    static func table(_ r: AllreduceBenchmark.Result) -> String {
        func f(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }
        func time(_ s: Double) -> String { s < 1e-3 ? f(s * 1e6, 1) + " µs" : f(s * 1e3, 2) + " ms" }
        func pad(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        let call = r.nonBlocking ? "MPI_Iallreduce + wait" : "MPI_Allreduce"
        var lines = [
            "allreduce: \(r.ranks) ranks (\(r.localRanks) on rank 0's node), in-place Float sum, \(call); "
                + "median of \(r.repetitions) repetitions, slowest rank",
            pad("bytes", 12) + pad("time", 13) + pad("algbw GB/s", 13) + pad("busbw GB/s", 13) + pad("calls/rep", 11),
        ]
        for s in r.samples {
            lines.append(pad(String(s.bytes), 12) + pad(time(s.medianSeconds), 13) + pad(f(s.algorithmicBandwidth / 1e9, 3), 13)
                         + pad(f(s.busBandwidth / 1e9, 3), 13) + pad(String(s.iterations), 11))
        }
        func describe(_ fit: LatencyBandwidthFit) -> String {
            let beta = fit.beta.isFinite ? f(fit.beta / 1e9, 3) + " GB/s" : "∞ (time did not grow with size)"
            return "α = \(time(fit.alpha))  β = \(beta)"
        }
        if let fit = r.fit {
            lines.append("fit t = α + 2(n−1)/n · bytes / β (relative least squares), all sizes:  " + describe(fit))
        }
        if let fit = r.fitLarge {
            lines.append("  sizes from \(r.largeBytes) bytes up:  " + describe(fit))
        }
        return lines.joined(separator: "\n")
    }
}
