/// The α–β cost of a ring allreduce, t(bytes) = α + 2(n−1)/n · bytes / β, fitted to measured times.
///
/// The fit minimises the *relative* squared error Σ ((t_i − model_i) / t_i)²: a sweep from 4 B to 128 MiB
/// spans six decades of time, and plain least squares would let the largest sizes decide α as well (it then
/// often comes out negative). Weighting by 1/t² lets the small sizes set α and the large ones set β.
public struct LatencyBandwidthFit: Equatable, Sendable {
    /// Seconds of one allreduce that do not depend on its size.
    public var alpha: Double
    /// Bytes per second through the ring's slowest link; infinite when time did not grow with size.
    public var beta: Double

    public init(alpha: Double, beta: Double) {
        self.alpha = alpha
        self.beta = beta
    }

    /// 2(n−1)/n: the bytes each rank sends (and receives) per byte of buffer in a ring allreduce — a
    /// reduce-scatter and an allgather of n−1 steps of bytes/n each. NCCL's "bus bandwidth" factor.
    public static func busFactor(ranks n: Int) -> Double {
        n > 1 ? 2 * Double(n - 1) / Double(n) : 0
    }

    /// Predicted seconds for one allreduce of `bytes` on `ranks` ranks.
    public func seconds(bytes: Double, ranks: Int) -> Double {
        alpha + Self.busFactor(ranks: ranks) * bytes / beta
    }

    /// Fits α ≥ 0 and β > 0 to `(bytes, seconds)` pairs measured on `ranks` ranks. With fewer than two
    /// distinct sizes, or when the free fit gives a negative α or slope, the fit keeps the other parameter's
    /// one-sided optimum (α = 0, or β infinite) — the constrained least-squares answer for two parameters.
    public static func fit(ranks: Int, samples: [(bytes: Int, seconds: Double)]) -> LatencyBandwidthFit? {
        let points = samples.filter { $0.seconds > 0 && $0.seconds.isFinite }
        guard !points.isEmpty, ranks > 1 else { return nil }
        let factor = busFactor(ranks: ranks)
        var s = 0.0, sx = 0.0, st = 0.0, sxx = 0.0, sxt = 0.0
        for p in points {
            let w = 1 / (p.seconds * p.seconds), x = factor * Double(p.bytes)
            s += w; sx += w * x; st += w * p.seconds; sxx += w * x * x; sxt += w * x * p.seconds
        }
        let determinant = s * sxx - sx * sx
        // Zero-intercept slope and zero-slope intercept: the boundaries of the constrained problem.
        let throughOrigin = sxx > 0 && sxt > 0 ? LatencyBandwidthFit(alpha: 0, beta: sxx / sxt) : nil
        let flat = LatencyBandwidthFit(alpha: st / s, beta: .infinity)
        guard determinant > 1e-12 * s * sxx else { return throughOrigin ?? flat }
        let slope = (s * sxt - sx * st) / determinant
        let intercept = (st - slope * sx) / s
        // A slope that adds under a billionth of the time at the largest size is rounding, not a bandwidth.
        let largest = points.map { factor * Double($0.bytes) }.max() ?? 0
        if abs(slope) * largest <= 1e-9 * abs(intercept) { return flat }
        if slope > 0 && intercept >= 0 { return LatencyBandwidthFit(alpha: intercept, beta: 1 / slope) }
        let candidates = [throughOrigin, flat].compactMap { $0 }
        return candidates.min { $0.relativeError(points, factor) < $1.relativeError(points, factor) }
    }

    private func relativeError(_ points: [(bytes: Int, seconds: Double)], _ factor: Double) -> Double {
        points.reduce(0) { sum, p in
            let r = (p.seconds - alpha - factor * Double(p.bytes) / beta) / p.seconds
            return sum + r * r
        }
    }
}
