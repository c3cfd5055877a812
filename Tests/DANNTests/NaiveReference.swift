import Foundation

/// A deliberately naive Double-precision reimplementation of the network's operations, written from the
/// definitions (PyTorch semantics), independent of the library's kernels: the reference for gradient checks.
/// All images are image-major [N][C][H][W].
enum Naive {
    static func conv(_ x: [Double], n: Int, c: Int, h: Int, w: Int, weight: [Double], bias: [Double],
                     out: Int, k: Int, pad: Int) -> (y: [Double], oh: Int, ow: Int) {
        let oh = h + 2 * pad - k + 1, ow = w + 2 * pad - k + 1
        var y = [Double](repeating: 0, count: n * out * oh * ow)
        for b in 0..<n { for o in 0..<out { for oy in 0..<oh { for ox in 0..<ow {
            var s = bias[o]
            for ci in 0..<c { for ky in 0..<k { for kx in 0..<k {
                let iy = oy + ky - pad, ix = ox + kx - pad
                if iy >= 0 && iy < h && ix >= 0 && ix < w {
                    s += weight[((o * c + ci) * k + ky) * k + kx] * x[((b * c + ci) * h + iy) * w + ix]
                }
            } } }
            y[((b * out + o) * oh + oy) * ow + ox] = s
        } } } }
        return (y, oh, ow)
    }

    /// Max pooling with −∞ padding; returns values and the flat input index of the first maximum.
    static func maxPool(_ x: [Double], planes: Int, h: Int, w: Int, k: Int, s: Int, pad: Int)
        -> (y: [Double], arg: [Int], oh: Int, ow: Int) {
        let oh = (h + 2 * pad - k) / s + 1, ow = (w + 2 * pad - k) / s + 1
        var y = [Double](), arg = [Int]()
        for p in 0..<planes { for oy in 0..<oh { for ox in 0..<ow {
            var best = -Double.infinity, bi = -1
            for ky in 0..<k { for kx in 0..<k {
                let iy = oy * s + ky - pad, ix = ox * s + kx - pad
                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                let v = x[(p * h + iy) * w + ix]
                if v > best { best = v; bi = (p * h + iy) * w + ix }
            } }
            y.append(best); arg.append(bi)
        } } }
        return (y, arg, oh, ow)
    }

    static func relu(_ x: [Double]) -> [Double] { x.map { max($0, 0) } }

    /// PyTorch's training-mode batch norm on image-major [N][C][plane] (plane 1: BatchNorm1d on [N][C]), rows
    /// below `sourceRows` and the rest normalised as two separate batches. Also returns each domain's
    /// per-channel mean and unbiased variance (what the running statistics take in).
    static func batchNorm(_ x: [Double], n: Int, c: Int, plane: Int, gamma: [Double], beta: [Double], sourceRows: Int)
        -> (y: [Double], means: [[Double]], variances: [[Double]]) {
        var y = [Double](repeating: 0, count: x.count)
        var means: [[Double]] = [], variances: [[Double]] = []
        for rows in [0..<sourceRows, sourceRows..<n] where !rows.isEmpty {
            var dm: [Double] = [], dv: [Double] = []
            for ch in 0..<c {
                let indices = rows.flatMap { b in (0..<plane).map { (b * c + ch) * plane + $0 } }
                let mean = indices.map { x[$0] }.reduce(0, +) / Double(indices.count)
                let variance = indices.map { (x[$0] - mean) * (x[$0] - mean) }.reduce(0, +) / Double(indices.count)
                for i in indices { y[i] = (x[i] - mean) / (variance + 1e-5).squareRoot() * gamma[ch] + beta[ch] }
                dm.append(mean)
                dv.append(indices.count > 1 ? variance * Double(indices.count) / Double(indices.count - 1) : variance)
            }
            means.append(dm); variances.append(dv)
        }
        return (y, means, variances)
    }

    static func linear(_ x: [Double], n: Int, inSize: Int, weight: [Double], bias: [Double], out: Int) -> [Double] {
        var y = [Double](repeating: 0, count: n * out)
        for b in 0..<n { for o in 0..<out {
            var s = bias[o]
            for i in 0..<inSize { s += weight[o * inSize + i] * x[b * inSize + i] }
            y[b * out + o] = s
        } }
        return y
    }

    /// Σ_rows −log softmax(z)[target]
    static func nll(_ z: [Double], rows: Int, classes: Int, targets: [Int]) -> Double {
        var total = 0.0
        for r in 0..<rows {
            let row = Array(z[r * classes..<(r + 1) * classes])
            let m = row.max()!
            let lse = m + log(row.map { exp($0 - m) }.reduce(0, +))
            total += lse - row[targets[r]]
        }
        return total
    }

    /// [N][C][HW] ↔ [C][N][HW]
    static func imageToChannelMajor(_ x: [Double], n: Int, c: Int, plane: Int) -> [Double] {
        var y = x
        for b in 0..<n { for ci in 0..<c { for i in 0..<plane { y[(ci * n + b) * plane + i] = x[(b * c + ci) * plane + i] } } }
        return y
    }

    static func channelToImageMajor(_ x: [Double], n: Int, c: Int, plane: Int) -> [Double] {
        var y = x
        for b in 0..<n { for ci in 0..<c { for i in 0..<plane { y[(b * c + ci) * plane + i] = x[(ci * n + b) * plane + i] } } }
        return y
    }
}

/// Central finite differences of a Double function at `x`, for the coordinates in `indices`.
func centralDifferences(at x: [Double], indices: [Int], h: Double = 1e-4, _ f: ([Double]) -> Double) -> [Double] {
    var probe = x
    return indices.map { i in
        probe[i] = x[i] + h
        let up = f(probe)
        probe[i] = x[i] - h
        let down = f(probe)
        probe[i] = x[i]
        return (up - down) / (2 * h)
    }
}

/// ∂f/∂x_i by central differences at steps 1e-4 and 1e-5, or nil when the two disagree: ReLU and max-pool
/// make the networks piecewise smooth, and a kink within reach of x_i says nothing about the backward pass.
func smoothCentralDifference(at x: [Double], index i: Int, _ f: ([Double]) -> Double) -> Double? {
    let coarse = centralDifferences(at: x, indices: [i], h: 1e-4, f)[0]
    let fine = centralDifferences(at: x, indices: [i], h: 1e-5, f)[0]
    return abs(coarse - fine) <= 1e-4 * max(abs(fine), 1e-6) ? fine : nil
}

/// ‖a − b‖ / max(‖a‖, ‖b‖): one number per tensor, insensitive to single tiny components.
func relativeError(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    var diff = 0.0, na = 0.0, nb = 0.0
    for i in a.indices {
        diff += (a[i] - b[i]) * (a[i] - b[i])
        na += a[i] * a[i]
        nb += b[i] * b[i]
    }
    return diff.squareRoot() / max(na.squareRoot(), nb.squareRoot(), 1e-30)
}

/// A small deterministic generator for test data (independent of the library's CounterRNG).
struct TestRandom {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &* 0x2545_F491_4F6C_DD1D | 1 }
    mutating func next() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }
    mutating func uniform(_ lo: Double = -1, _ hi: Double = 1) -> Double {
        lo + (hi - lo) * Double(next() >> 11) * 0x1p-53
    }
    mutating func floats(_ n: Int, _ lo: Double = -1, _ hi: Double = 1) -> [Float] {
        (0..<n).map { _ in Float(uniform(lo, hi)) }
    }
}
