/// Eigenvalues and eigenvectors of a real symmetric matrix by the cyclic Jacobi method, in Double.
///
/// Each rotation zeroes one off-diagonal pair; sweeps over all pairs repeat until the off-diagonal
/// mass is negligible against the whole matrix. Slower than a tridiagonal QR for large n, but
/// simple, accurate to working precision (including small eigenvalues), and plenty fast for the
/// feature covariances of the metrics (n of a few hundred).
public struct SymmetricEigen: Sendable {
    /// The eigenvalues, in descending order.
    public let values: [Double]
    /// The eigenvectors as the columns of an n x n row-major matrix, in the order of `values`.
    public let vectors: [Double]
    public let n: Int

    /// Decomposes the symmetric `matrix` (n x n, row-major). Only symmetry up to rounding is
    /// assumed: the matrix is symmetrised first.
    public init(_ matrix: [Double], n: Int, maxSweeps: Int = 100) {
        precondition(matrix.count == n * n, "SymmetricEigen: \(matrix.count) values for \(n) x \(n)")
        var a = matrix
        for i in 0..<n {
            for j in (i + 1)..<n {
                let m = (a[i * n + j] + a[j * n + i]) / 2
                a[i * n + j] = m
                a[j * n + i] = m
            }
        }
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        let total = a.reduce(0) { $0 + $1 * $1 }
        for _ in 0..<maxSweeps {
            var off: Double = 0
            for i in 0..<n { for j in (i + 1)..<n { off += a[i * n + j] * a[i * n + j] } }
            if off <= total * 1e-30 || off == 0 { break }
            for p in 0..<n {
                for q in (p + 1)..<n {
                    let apq = a[p * n + q]
                    if apq == 0 { continue }
                    // The rotation angle that zeroes a[p][q]: t = tan(angle) is the smaller root
                    // of t^2 + 2 theta t - 1 = 0.
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * apq)
                    let t: Double
                    if abs(theta) > 1e150 {
                        t = 1 / (2 * theta)
                    } else {
                        t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                    }
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
        }
        let order = (0..<n).sorted { a[$0 * n + $0] > a[$1 * n + $1] }
        values = order.map { a[$0 * n + $0] }
        var sorted = [Double](repeating: 0, count: n * n)
        for (column, source) in order.enumerated() {
            for k in 0..<n { sorted[k * n + column] = v[k * n + source] }
        }
        vectors = sorted
        self.n = n
    }

    /// V f(Lambda) V^T: the matrix function `f` applied through the decomposition.
    public func map(_ f: (Double) -> Double) -> [Double] {
        let fv = values.map(f)
        var out = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in i..<n {
                var s: Double = 0
                for k in 0..<n { s += vectors[i * n + k] * fv[k] * vectors[j * n + k] }
                out[i * n + j] = s
                out[j * n + i] = s
            }
        }
        return out
    }
}

/// Small dense Double matrix helpers for the metrics (row-major, square).
enum DenseMatrix {
    static func multiply(_ a: [Double], _ b: [Double], n: Int) -> [Double] {
        var out = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for k in 0..<n {
                let aik = a[i * n + k]
                if aik == 0 { continue }
                for j in 0..<n { out[i * n + j] += aik * b[k * n + j] }
            }
        }
        return out
    }

    static func trace(_ a: [Double], n: Int) -> Double {
        (0..<n).reduce(0) { $0 + a[$1 * n + $1] }
    }
}
