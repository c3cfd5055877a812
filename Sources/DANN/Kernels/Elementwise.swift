/// Small elementwise kernels; each is one pass over memory.
public enum Elementwise {
    /// y = max(x, 0)
    public static func reluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = max(x[i], 0) }
    }

    /// dx = dy where the forward output was positive. (Reading y, not x, lets the forward run in place.)
    public static func reluBackward(
        output y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, count: Int
    ) {
        for i in 0..<count { dx[i] = y[i] > 0 ? dy[i] : 0 }
    }

    /// Adds bias[r] to every element of row r of a rows×length matrix (conv output channels).
    public static func addRowBias(_ x: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, rows: Int, length: Int) {
        for r in 0..<rows {
            let b = bias[r]
            let row = x + r * length
            for i in 0..<length { row[i] += b }
        }
    }

    /// Adds bias[c] to column c of every row of a rows×cols matrix (linear layer output).
    public static func addColumnBias(_ x: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, rows: Int, cols: Int) {
        for r in 0..<rows {
            let row = x + r * cols
            for c in 0..<cols { row[c] += bias[c] }
        }
    }

    /// out[r] = Σ_i x[r·length + i] (bias gradient of a conv); accumulated in Double-free pairwise Float.
    public static func rowSums(_ x: UnsafePointer<Float>, rows: Int, length: Int, into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows { out[r] = sum(x + r * length, count: length) }
    }

    /// out[c] = Σ_r x[r·cols + c] (bias gradient of a linear layer).
    public static func columnSums(_ x: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>) {
        out.update(repeating: 0, count: cols)
        for r in 0..<rows {
            let row = x + r * cols
            for c in 0..<cols { out[c] += row[c] }
        }
    }

    /// Sum with eight independent accumulators: vectorises and keeps the rounding error small for long rows.
    @inline(__always)
    public static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 8 <= count {
            acc += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            i += 8
        }
        var total = acc.sum()
        while i < count { total += x[i]; i += 1 }
        return total
    }

    /// y = a · x
    public static func scale(_ x: UnsafePointer<Float>, by a: Float, into y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = a * x[i] }
    }

    /// y += x
    public static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] += x[i] }
    }
}
