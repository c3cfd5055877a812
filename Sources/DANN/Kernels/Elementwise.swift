/// Small elementwise kernels; each is one pass over memory, eight lanes at a time (branch-free selects,
/// so a ReLU mask of random signs costs no mispredictions).
public enum Elementwise {
    public typealias Lanes = SIMD8<Float>

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> Lanes { UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }

    @inline(__always)
    static func store(_ v: Lanes, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self) }

    /// y = max(x, 0) (x and y may be the same buffer). This plain loop auto-vectorises to maxps;
    /// SIMD8's `pointwiseMax` goes lane by lane (NaN rules) and is ten times slower.
    public static func reluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = max(x[i], 0) }
    }

    /// dx = dy where the forward output was positive. (Reading y, not x, lets the forward run in place.)
    public static func reluBackward(
        output y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, count: Int
    ) {
        let zero = Lanes(repeating: 0)
        var i = 0
        while i + 8 <= count {
            store(zero.replacing(with: load(dy + i), where: load(y + i) .> zero), dx + i)
            i += 8
        }
        while i < count { dx[i] = y[i] > 0 ? dy[i] : 0; i += 1 }
    }

    /// Adds bias[r] to every element of row r of a rows×length matrix (conv output channels).
    public static func addRowBias(_ x: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, rows: Int, length: Int) {
        addRowBias(x, bias: bias, rows: rows, length: length, stride: length)
    }

    /// Adds bias[r] to the first `length` elements of row r, rows `stride` apart.
    public static func addRowBias(_ x: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, rows: Int, length: Int, stride: Int) {
        for r in 0..<rows {
            let b = bias[r], lanes = Lanes(repeating: bias[r])
            let row = x + r * stride
            var i = 0
            while i + 8 <= length { store(load(row + i) + lanes, row + i); i += 8 }
            while i < length { row[i] += b; i += 1 }
        }
    }

    /// Adds bias[c] to column c of every row of a rows×cols matrix (linear layer output).
    public static func addColumnBias(_ x: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, rows: Int, cols: Int) {
        for r in 0..<rows { add(bias, into: x + r * cols, count: cols) }
    }

    /// out[r] = Σ_i x[r·length + i] (bias gradient of a conv: 50,000 terms per channel for the seed, where
    /// a Float running sum loses three digits), accumulated as `blockSum` does. With `accumulate`, out[r] +=
    /// that sum (added in Double, one rounding).
    public static func rowSums(_ x: UnsafePointer<Float>, rows: Int, length: Int, into out: UnsafeMutablePointer<Float>,
                               accumulate: Bool = false) {
        for r in 0..<rows {
            let sum = blockSum(x + r * length, count: length)
            out[r] = Float(accumulate ? Double(out[r]) + sum : sum)
        }
    }

    /// Σ x in Double: eight Float lanes over blocks of at most 64 values (8 terms per lane, so each block
    /// sum is nearly exact), the block sums added in Double. Vectorised, yet as accurate as a Double loop.
    @inline(__always)
    public static func blockSum(_ x: UnsafePointer<Float>, count: Int) -> Double {
        var total = 0.0, i = 0
        while i + 8 <= count {
            var acc = Lanes()
            let end = min(count, i + 64) & ~7
            while i < end { acc += load(x + i); i += 8 }
            total += Double(acc.sum())
        }
        while i < count { total += Double(x[i]); i += 1 }
        return total
    }

    /// out[c] = Σ_r x[r·cols + c] (bias gradient of a linear layer); with `accumulate`, out[c] += that sum.
    public static func columnSums(_ x: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>,
                                  accumulate: Bool = false) {
        if !accumulate { out.update(repeating: 0, count: cols) }
        for r in 0..<rows { add(x + r * cols, into: out, count: cols) }
    }

    /// y = a · x
    public static func scale(_ x: UnsafePointer<Float>, by a: Float, into y: UnsafeMutablePointer<Float>, count: Int) {
        let lanes = Lanes(repeating: a)
        var i = 0
        while i + 8 <= count { store(load(x + i) * lanes, y + i); i += 8 }
        while i < count { y[i] = a * x[i]; i += 1 }
    }

    /// y += x
    public static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count { store(load(y + i) + load(x + i), y + i); i += 8 }
        while i < count { y[i] += x[i]; i += 1 }
    }

    /// z = x ⊙ y
    public static func multiply(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, into z: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count { store(load(x + i) * load(y + i), z + i); i += 8 }
        while i < count { z[i] = x[i] * y[i]; i += 1 }
    }
}
