import Foundation

/// The leading principal components of the rows of a matrix, to draw a feature space in 2-D.
///
/// Features can be 6272 wide (the seed extractor), so the F×F covariance is never formed: block subspace
/// iteration multiplies the centred data by a few vectors at a time through BLAS (X·V, then Xᵀ·(X·V)), and
/// a Rayleigh–Ritz step on the small block turns its span into eigenvectors. The block is wider than the
/// components asked for, so component k converges at the rate λ_{p+1}/λ_k instead of λ_{k+1}/λ_k, which
/// matters when the second and third variances are close. Everything but the two big products is Double.
public struct PCA {
    public let featureCount: Int
    /// Column means of the data (F).
    public let mean: [Double]
    /// k × F row-major: orthonormal directions, largest variance first, each signed so that its
    /// largest-magnitude entry is positive (a deterministic choice; PCA fixes directions only up to sign).
    public let components: [Double]
    /// Sample variance (divided by n − 1) of the data along each component.
    public let variances: [Double]
    /// Total sample variance: the trace of the covariance.
    public let totalVariance: Double
    /// Subspace iterations run.
    public let iterations: Int

    public var componentCount: Int { variances.count }

    /// Share of the total variance along each component (0 when the data has none).
    public var explainedVarianceRatio: [Double] {
        variances.map { totalVariance > 0 ? $0 / totalVariance : 0 }
    }

    /// Component `j` as F values.
    public func component(_ j: Int) -> ArraySlice<Double> {
        components[(j * featureCount)..<((j + 1) * featureCount)]
    }

    /// Fits `components` directions to `count` rows of `features` Floats each (row-major).
    /// - Parameters:
    ///   - tolerance: stop once ‖C·v − λ·v‖ ≤ tolerance · λ₁ for every wanted component (Float products put
    ///     a floor near 1e-6 under this, hence the default).
    ///   - maxIterations: a bound for data without a gap; iteration also stops when the residual stalls.
    public init(rows x: UnsafePointer<Float>, count n: Int, features f: Int, components wanted: Int = 2,
                oversampling: Int = 8, tolerance: Double = 1e-5, maxIterations: Int = 300) {
        precondition(n > 0 && f > 0 && wanted > 0, "PCA of a \(n)×\(f) matrix, \(wanted) components")
        featureCount = f
        let k = min(wanted, f), p = min(f, k + oversampling)
        let denominator = Double(max(n - 1, 1))

        var mean = [Double](repeating: 0, count: f)
        for i in 0..<n { for j in 0..<f { mean[j] += Double(x[i * f + j]) } }
        for j in 0..<f { mean[j] /= Double(n) }
        self.mean = mean

        // The centred data in Float, the form BLAS multiplies; its Double sum of squares is the total variance
        // of exactly the matrix being decomposed.
        var centred = [Float](repeating: 0, count: n * f)
        var sumSquares = 0.0
        for i in 0..<n {
            for j in 0..<f {
                let value = Float(Double(x[i * f + j]) - mean[j])
                centred[i * f + j] = value
                sumSquares += Double(value) * Double(value)
            }
        }
        totalVariance = sumSquares / denominator

        var basis = Self.orthonormalized(Self.startingBlock(rows: f, columns: p), rows: f, columns: p, refills: 0)
        var values = [Double](repeating: 0, count: p)
        var block = [Float](repeating: 0, count: f * p)
        var projected = [Float](repeating: 0, count: n * p)
        var image = [Float](repeating: 0, count: f * p)
        var bestResidual = Double.infinity, sinceBest = 0, iteration = 0
        while iteration < maxIterations {
            iteration += 1
            for i in 0..<(f * p) { block[i] = Float(basis[i]) }
            // Y = X·V (n × p).
            Self.multiply(centred, block, into: &projected, transposeData: false, n: n, f: f, p: p)
            // Rayleigh–Ritz: the eigenvectors of Vᵀ·C·V = YᵀY/(n−1) rotate V onto the Ritz vectors.
            var ritz = [Double](repeating: 0, count: p * p)
            for i in 0..<n {
                for a in 0..<p {
                    let ya = Double(projected[i * p + a])
                    for b in a..<p { ritz[a * p + b] += ya * Double(projected[i * p + b]) }
                }
            }
            for a in 0..<p { for b in a..<p { ritz[a * p + b] /= denominator; ritz[b * p + a] = ritz[a * p + b] } }
            let eigen = SymmetricEigen.decompose(ritz, n: p)
            values = eigen.values
            basis = Self.product(basis, eigen.vectors, rows: f, inner: p, columns: p)
            let rotated = Self.product(projected.map(Double.init), eigen.vectors, rows: n, inner: p, columns: p)
            for i in 0..<(n * p) { projected[i] = Float(rotated[i]) }
            // W = Xᵀ·Y/(n−1) = C·V, the power step, and the residual of each wanted Ritz pair.
            Self.multiply(centred, projected, into: &image, transposeData: true, n: n, f: f, p: p)
            var next = image.map { Double($0) / denominator }
            var residual = 0.0
            for column in 0..<k {
                var squared = 0.0
                for row in 0..<f {
                    let r = next[row * p + column] - values[column] * basis[row * p + column]
                    squared += r * r
                }
                residual = max(residual, squared.squareRoot())
            }
            if values[0] <= 0 || residual <= tolerance * values[0] { break }
            if residual < 0.99 * bestResidual {
                (bestResidual, sinceBest) = (residual, 0)
            } else {
                sinceBest += 1
                // Rounding in the Float products has been reached: more iterations only shuffle noise.
                if sinceBest >= 20 { break }
            }
            next = Self.orthonormalized(next, rows: f, columns: p, refills: iteration)
            basis = next
        }
        iterations = iteration

        var components = [Double](repeating: 0, count: k * f)
        for column in 0..<k {
            var largest = 0.0
            for row in 0..<f where abs(basis[row * p + column]) > abs(largest) { largest = basis[row * p + column] }
            let sign: Double = largest < 0 ? -1 : 1
            for row in 0..<f { components[column * f + row] = sign * basis[row * p + column] }
        }
        self.components = components
        variances = values.prefix(k).map { max(0, $0) }
    }

    /// Coordinates of `count` rows along the components: count × k row-major, in Double.
    public func project(_ x: UnsafePointer<Float>, count: Int) -> [Double] {
        let f = featureCount, k = componentCount
        var out = [Double](repeating: 0, count: count * k)
        for i in 0..<count {
            for j in 0..<k {
                var sum = 0.0
                for c in 0..<f { sum += (Double(x[i * f + c]) - mean[c]) * components[j * f + c] }
                out[i * k + j] = sum
            }
        }
        return out
    }

    // MARK: Pieces

    /// X·B (n×p) or Xᵀ·B (f×p) for the n×f data X, through BLAS.
    private static func multiply(_ data: [Float], _ b: [Float], into c: inout [Float], transposeData: Bool,
                                 n: Int, f: Int, p: Int) {
        data.withUnsafeBufferPointer { x in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    BLAS.gemm(transA: transposeData, transB: false, m: transposeData ? f : n, n: p, k: transposeData ? n : f,
                              a: x.baseAddress!, lda: f, b: b.baseAddress!, ldb: p, c: c.baseAddress!, ldc: p)
                }
            }
        }
    }

    /// A·B for small row-major Double matrices (rows×inner times inner×columns).
    private static func product(_ a: [Double], _ b: [Double], rows: Int, inner: Int, columns: Int) -> [Double] {
        var c = [Double](repeating: 0, count: rows * columns)
        for i in 0..<rows {
            for l in 0..<inner {
                let ail = a[i * inner + l]
                if ail == 0 { continue }
                for j in 0..<columns { c[i * columns + j] += ail * b[l * columns + j] }
            }
        }
        return c
    }

    /// Deterministic Gaussian columns, so the same data always gives the same components.
    private static func startingBlock(rows: Int, columns: Int, stream: UInt64 = 0) -> [Double] {
        let key = CounterRNG.key(seed: 0x5043_41, stream, 0)
        return (0..<(rows * columns)).map { CounterRNG.normal(key: key, element: UInt64($0)) }
    }

    /// Modified Gram–Schmidt, twice ("twice is enough", Giraud et al. 2005), on the columns of a rows×columns
    /// row-major matrix. A column that vanishes (the data's rank is below the block width) is replaced by a
    /// fresh random one, so the block always spans `columns` dimensions.
    private static func orthonormalized(_ m: [Double], rows: Int, columns: Int, refills: Int) -> [Double] {
        var m = m
        func squaredNorm(_ j: Int) -> Double { (0..<rows).reduce(0) { $0 + m[$1 * columns + j] * m[$1 * columns + j] } }
        lazy var fresh = startingBlock(rows: rows, columns: columns, stream: UInt64(refills + 1))
        for j in 0..<columns {
            var before = squaredNorm(j)
            for attempt in 0..<2 {
                for _ in 0..<2 {
                    for i in 0..<j {
                        var dot = 0.0
                        for r in 0..<rows { dot += m[r * columns + i] * m[r * columns + j] }
                        for r in 0..<rows { m[r * columns + j] -= dot * m[r * columns + i] }
                    }
                }
                let after = squaredNorm(j)
                // Independent columns keep far more than 1e-20 of their squared length; a dependent one keeps rounding.
                if after > 1e-20 * before || (attempt == 1 && after > 0) {
                    let norm = after.squareRoot()
                    for r in 0..<rows { m[r * columns + j] /= norm }
                    break
                }
                for r in 0..<rows { m[r * columns + j] = fresh[r * columns + j] }
                before = squaredNorm(j)
            }
        }
        return m
    }
}
