import Foundation

/// The proxy A-distance between two feature sets (Ben-David et al. 2007; used by Ganin et al. 2016 and
/// tllib): train a linear classifier to tell the domains apart, measure its error ε on held-out features,
/// and report 2(1 − 2ε). Near 2: the domains are linearly separable; near 0: no better than chance.
///
/// The classifier is L2-regularised logistic regression fitted by full-batch Adam for a fixed number of
/// iterations, so the number is a deterministic function of the features (no shuffling, no early stop).
public struct ProxyADistance: Sendable {
    /// 2(1 − 2ε) with ε clipped to at most 0.5, so in [0, 2].
    public let distance: Double
    /// Balanced held-out error: the mean of the source and target error rates (so unequal counts cannot
    /// make a constant answer look better than chance).
    public let heldOutError: Double
    /// Balanced error on the training half (how far the classifier fits; a large gap to `heldOutError`
    /// means the features are wide for the sample).
    public let trainError: Double
    /// Rows in the training and held-out halves (both domains).
    public let trainCount: Int
    public let heldOutCount: Int

    public struct Options: Sendable {
        public var iterations = 500
        public var learningRate = 0.01
        /// Weight of ½‖w‖² added to the mean log-loss.
        public var l2 = 1e-3

        public init(iterations: Int = 500, learningRate: Double = 0.01, l2: Double = 1e-3) {
            self.iterations = iterations
            self.learningRate = learningRate
            self.l2 = l2
        }
    }

    /// Rows of `features` Floats: `sourceCount` source rows (label 0) and `targetCount` target rows (label 1).
    /// Each domain needs at least 2 rows: even positions train, odd positions are held out, so both halves
    /// sample the whole (evenly spaced) set.
    public init(source: UnsafePointer<Float>, sourceCount: Int, target: UnsafePointer<Float>, targetCount: Int,
                features f: Int, options: Options = Options()) {
        precondition(sourceCount >= 2 && targetCount >= 2 && f > 0, "proxy A-distance needs 2 rows per domain")
        func split(_ rows: UnsafePointer<Float>, _ count: Int, parity: Int) -> [UnsafePointer<Float>] {
            stride(from: parity, to: count, by: 2).map { rows + $0 * f }
        }
        let train = Samples(source: split(source, sourceCount, parity: 0), target: split(target, targetCount, parity: 0), features: f)
        let heldOut = Samples(source: split(source, sourceCount, parity: 1), target: split(target, targetCount, parity: 1), features: f)

        // Standardise with the training half's statistics. A feature constant there (a dead ReLU unit) gets
        // scale 0 rather than 1/ε: the held-out half may still vary on it, and that would blow up.
        var mean = [Double](repeating: 0, count: f), scale = [Double](repeating: 0, count: f)
        for row in train.rows { for j in 0..<f { mean[j] += Double(row[j]) } }
        for j in 0..<f { mean[j] /= Double(train.count) }
        for row in train.rows { for j in 0..<f { let d = Double(row[j]) - mean[j]; scale[j] += d * d } }
        for j in 0..<f {
            let std = (scale[j] / Double(train.count)).squareRoot()
            scale[j] = std > 1e-12 * max(1, abs(mean[j])) ? 1 / std : 0
        }
        let trainMatrix = train.standardized(mean: mean, scale: scale)
        let heldOutMatrix = heldOut.standardized(mean: mean, scale: scale)

        let model = LogisticRegression.fit(trainMatrix, labels: train.labels, weights: train.balancingWeights,
                                           features: f, options: options)
        let heldOutError = heldOut.balancedError(model.decisions(heldOutMatrix, count: heldOut.count))
        self.heldOutError = heldOutError
        trainError = train.balancedError(model.decisions(trainMatrix, count: train.count))
        distance = 2 * (1 - 2 * min(heldOutError, 0.5))
        trainCount = train.count
        heldOutCount = heldOut.count
    }

    /// One half of the data: source rows then target rows.
    private struct Samples {
        let rows: [UnsafePointer<Float>]
        let sourceCount: Int
        let features: Int
        var count: Int { rows.count }
        var targetCount: Int { rows.count - sourceCount }

        init(source: [UnsafePointer<Float>], target: [UnsafePointer<Float>], features: Int) {
            rows = source + target
            sourceCount = source.count
            self.features = features
        }

        var labels: [Double] { (0..<count).map { $0 < sourceCount ? 0 : 1 } }

        /// Per-row weights giving each domain half the total, averaging to 1.
        var balancingWeights: [Double] {
            (0..<count).map { Double(count) / (2 * Double($0 < sourceCount ? sourceCount : targetCount)) }
        }

        func standardized(mean: [Double], scale: [Double]) -> [Float] {
            var out = [Float](repeating: 0, count: count * features)
            for (i, row) in rows.enumerated() {
                for j in 0..<features { out[i * features + j] = Float((Double(row[j]) - mean[j]) * scale[j]) }
            }
            return out
        }

        /// Mean of the two domains' error rates for "is target" decisions.
        func balancedError(_ isTarget: [Bool]) -> Double {
            var wrongSource = 0, wrongTarget = 0
            for (i, decision) in isTarget.enumerated() {
                if i < sourceCount { wrongSource += decision ? 1 : 0 } else { wrongTarget += decision ? 0 : 1 }
            }
            return (Double(wrongSource) / Double(sourceCount) + Double(wrongTarget) / Double(targetCount)) / 2
        }
    }
}

/// Binary logistic regression p(y = 1 | x) = σ(w·x + b) by full-batch Adam; the two matrix–vector products
/// of each step go through BLAS.
struct LogisticRegression {
    var weights: [Double]
    var bias: Double

    /// Minimises Σᵢ weightᵢ·logloss(yᵢ, σ(w·xᵢ + b)) / n + l2/2 · ‖w‖² over `labels.count` rows of `x`.
    static func fit(_ x: [Float], labels: [Double], weights rowWeights: [Double], features f: Int,
                    options: ProxyADistance.Options) -> LogisticRegression {
        let n = labels.count
        var model = LogisticRegression(weights: [Double](repeating: 0, count: f), bias: 0)
        var m = [Double](repeating: 0, count: f + 1), v = [Double](repeating: 0, count: f + 1)
        var residual = [Float](repeating: 0, count: n)
        var gradient = [Float](repeating: 0, count: f)
        let (beta1, beta2, epsilon) = (0.9, 0.999, 1e-8)
        for step in 1...max(1, options.iterations) {
            let logits = model.logits(x, count: n)
            var biasGradient = 0.0
            for i in 0..<n {
                let r = rowWeights[i] * (sigmoid(logits[i]) - labels[i]) / Double(n)
                residual[i] = Float(r)
                biasGradient += r
            }
            // ∇w = Xᵀ·r + l2·w.
            x.withUnsafeBufferPointer { x in
                residual.withUnsafeBufferPointer { r in
                    gradient.withUnsafeMutableBufferPointer { g in
                        BLAS.gemm(transA: true, transB: false, m: f, n: 1, k: n, a: x.baseAddress!, lda: f,
                                  b: r.baseAddress!, ldb: 1, c: g.baseAddress!, ldc: 1)
                    }
                }
            }
            let correction1 = 1 - pow(beta1, Double(step)), correction2 = 1 - pow(beta2, Double(step))
            for j in 0...f {
                let g = j < f ? Double(gradient[j]) + options.l2 * model.weights[j] : biasGradient
                m[j] = beta1 * m[j] + (1 - beta1) * g
                v[j] = beta2 * v[j] + (1 - beta2) * g * g
                let update = options.learningRate * (m[j] / correction1) / ((v[j] / correction2).squareRoot() + epsilon)
                if j < f { model.weights[j] -= update } else { model.bias -= update }
            }
        }
        return model
    }

    /// w·xᵢ + b for `count` rows.
    func logits(_ x: [Float], count n: Int) -> [Double] {
        let f = weights.count
        let w = weights.map { Float($0) }
        var z = [Float](repeating: 0, count: n)
        x.withUnsafeBufferPointer { x in
            w.withUnsafeBufferPointer { w in
                z.withUnsafeMutableBufferPointer { z in
                    BLAS.gemm(transA: false, transB: false, m: n, n: 1, k: f, a: x.baseAddress!, lda: f,
                              b: w.baseAddress!, ldb: 1, c: z.baseAddress!, ldc: 1)
                }
            }
        }
        return z.map { Double($0) + bias }
    }

    /// True where the row is classified as target (p > ½).
    func decisions(_ x: [Float], count: Int) -> [Bool] { logits(x, count: count).map { $0 > 0 } }

    private static func sigmoid(_ z: Double) -> Double {
        z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z))
    }
}
