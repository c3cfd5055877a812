import Foundation

/// Eigenvalues and eigenvectors of a small symmetric matrix (the Rayleigh–Ritz block of `PCA`, at most a
/// few dozen rows) by cyclic Jacobi rotations: slow for big matrices but simple, and accurate to rounding
/// for every eigenvalue, however close, which is what a Ritz step needs.
enum SymmetricEigen {
    /// `matrix` is n×n row-major and symmetric. Returns the eigenvalues in decreasing order and the
    /// eigenvectors as the columns of an n×n row-major matrix, in the same order.
    static func decompose(_ matrix: [Double], n: Int) -> (values: [Double], vectors: [Double]) {
        precondition(matrix.count == n * n, "SymmetricEigen: \(matrix.count) entries for \(n)×\(n)")
        var a = matrix
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        let scale = a.reduce(0) { $0 + $1 * $1 }
        for _ in 0..<100 {
            var off = 0.0
            for i in 0..<n { for j in 0..<n where j != i { off += a[i * n + j] * a[i * n + j] } }
            if off <= 1e-30 * scale { break }
            for p in 0..<n {
                for q in (p + 1)..<n where a[p * n + q] != 0 {
                    rotate(&a, &v, n: n, p: p, q: q)
                }
            }
        }
        let order = (0..<n).sorted { a[$0 * n + $0] > a[$1 * n + $1] }
        var vectors = [Double](repeating: 0, count: n * n)
        for (column, source) in order.enumerated() {
            for row in 0..<n { vectors[row * n + column] = v[row * n + source] }
        }
        return (order.map { a[$0 * n + $0] }, vectors)
    }

    /// One rotation zeroing a[p][q] (Golub & Van Loan, Algorithm 8.5.1, with the smaller root for stability).
    private static func rotate(_ a: inout [Double], _ v: inout [Double], n: Int, p: Int, q: Int) {
        let apq = a[p * n + q]
        let theta = (a[q * n + q] - a[p * n + p]) / (2 * apq)
        let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
        let c = 1 / (t * t + 1).squareRoot(), s = t * c
        for k in 0..<n {
            let akp = a[k * n + p], akq = a[k * n + q]
            a[k * n + p] = c * akp - s * akq
            a[k * n + q] = s * akp + c * akq
        }
        for k in 0..<n {
            let apk = a[p * n + k], aqk = a[q * n + k]
            a[p * n + k] = c * apk - s * aqk
            a[q * n + k] = s * apk + c * aqk
        }
        for k in 0..<n {
            let vkp = v[k * n + p], vkq = v[k * n + q]
            v[k * n + p] = c * vkp - s * vkq
            v[k * n + q] = s * vkp + c * vkq
        }
    }
}
