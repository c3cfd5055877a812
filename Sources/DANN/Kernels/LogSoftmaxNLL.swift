#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Log-softmax followed by negative log-likelihood, fused: one pass gives the loss and dL/dlogits.
public enum LogSoftmaxNLL {
    /// For rows×classes logits and one target per row, returns Σ_rows NLL · scale and writes
    /// grad = scale · (softmax − onehot). `correct` counts rows whose argmax equals the target.
    @discardableResult
    public static func forwardBackward(
        logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, rows: Int, classes: Int, scale: Float,
        grad: UnsafeMutablePointer<Float>?, correct: UnsafeMutablePointer<Int>? = nil
    ) -> Double {
        var loss = 0.0
        var hits = 0
        for r in 0..<rows {
            let z = logits + r * classes
            var zmax = z[0]
            var best = 0
            for c in 1..<classes where z[c] > zmax { zmax = z[c]; best = c }
            var sumExp: Float = 0
            for c in 0..<classes { sumExp += exp(z[c] - zmax) }
            let logSum = zmax + log(sumExp)
            let t = Int(targets[r])
            loss += Double(logSum - z[t])
            if best == t { hits += 1 }
            if let grad {
                let g = grad + r * classes
                for c in 0..<classes { g[c] = scale * exp(z[c] - logSum) }
                g[t] -= scale
            }
        }
        correct?.pointee += hits
        return loss * Double(scale)
    }

    /// Log-probabilities of each row (for prediction and evaluation).
    public static func logProbabilities(_ logits: UnsafePointer<Float>, rows: Int, classes: Int, into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let z = logits + r * classes
            var zmax = z[0]
            for c in 1..<classes { zmax = max(zmax, z[c]) }
            var sumExp: Float = 0
            for c in 0..<classes { sumExp += exp(z[c] - zmax) }
            let logSum = zmax + log(sumExp)
            for c in 0..<classes { out[r * classes + c] = z[c] - logSum }
        }
    }
}
