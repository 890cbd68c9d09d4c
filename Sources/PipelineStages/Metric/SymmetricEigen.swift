import CLAPACK
import Foundation
import TensorRuntime

/// Eigenvalues and eigenvectors of a real symmetric matrix, in Double.
///
/// Up to `jacobiLimit` rows, by the cyclic Jacobi method: each rotation zeroes one off-diagonal
/// pair; sweeps over all pairs repeat until the off-diagonal mass is negligible against the whole
/// matrix. It is accurate to working precision (including small eigenvalues) and keeps the
/// classifier metrics' numbers as they were. Larger matrices (Inception's 2048-d covariances,
/// where Jacobi's O(n^3) sweeps take minutes) go to LAPACK's divide-and-conquer `dsyevd`.
public struct SymmetricEigen: Sendable {
    /// The largest matrix decomposed by Jacobi; beyond it, LAPACK.
    public static let jacobiLimit = 256
    /// The eigenvalues, in descending order.
    public let values: [Double]
    /// The eigenvectors as the columns of an n x n row-major matrix, in the order of `values`.
    public let vectors: [Double]
    public let n: Int

    /// Decomposes the symmetric `matrix` (n x n, row-major). Only symmetry up to rounding is
    /// assumed: the matrix is symmetrised first.
    public init(_ matrix: [Double], n: Int, maxSweeps: Int = 100) throws {
        precondition(matrix.count == n * n, "SymmetricEigen: \(matrix.count) values for \(n) x \(n)")
        if n > Self.jacobiLimit {
            try self.init(lapack: matrix, n: n)
        } else {
            self.init(jacobi: matrix, n: n, maxSweeps: maxSweeps)
        }
    }

    /// The eigenvalues alone, in descending order (LAPACK skips the eigenvectors, about a
    /// quarter of the work, beyond `jacobiLimit`).
    public static func values(_ matrix: [Double], n: Int) throws -> [Double] {
        if n <= jacobiLimit { return SymmetricEigen(jacobi: matrix, n: n, maxSweeps: 100).values }
        var a = matrix
        return try LAPACKEigen.dsyevd(&a, n: n, vectors: false).reversed()
    }

    /// Decomposes by LAPACK's `dsyevd` (divide and conquer).
    public init(lapack matrix: [Double], n: Int) throws {
        var a = matrix
        let ascending = try LAPACKEigen.dsyevd(&a, n: n, vectors: true)
        values = ascending.reversed()
        // Column-major eigenvectors (column j of `a` belongs to ascending value j), reordered to
        // the row-major, descending layout of `vectors`.
        var sorted = [Double](repeating: 0, count: n * n)
        for column in 0..<n {
            let source = n - 1 - column
            for k in 0..<n { sorted[k * n + column] = a[source * n + k] }
        }
        vectors = sorted
        self.n = n
    }

    /// Decomposes by cyclic Jacobi rotations.
    public init(jacobi matrix: [Double], n: Int, maxSweeps: Int = 100) {
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

/// LAPACK's symmetric eigensolver on a Swift array.
enum LAPACKEigen {
    /// The eigenvalues of the symmetric `a` (n x n; its lower triangle is read), ascending; with
    /// `vectors`, `a` is overwritten with the eigenvectors as column-major columns.
    static func dsyevd(_ a: inout [Double], n: Int, vectors: Bool) throws -> [Double] {
        var n32 = Int32(n), lwork: Int32 = -1, liwork: Int32 = -1, info: Int32 = 0
        var jobz = CChar(UInt8(ascii: vectors ? "V" : "N")), uplo = CChar(UInt8(ascii: "L"))
        var w = [Double](repeating: 0, count: n)
        var workSize: Double = 0, iworkSize: Int32 = 0
        a.withUnsafeMutableBufferPointer { pa in
            dsyevd_(&jobz, &uplo, &n32, pa.baseAddress, &n32, &w, &workSize, &lwork, &iworkSize, &liwork, &info)
        }
        guard info == 0 else { throw TensorError("LAPACK dsyevd: workspace query failed (info \(info)) for \(n) x \(n)") }
        lwork = Int32(workSize)
        liwork = iworkSize
        var work = [Double](repeating: 0, count: Int(lwork))
        var iwork = [Int32](repeating: 0, count: Int(liwork))
        a.withUnsafeMutableBufferPointer { pa in
            dsyevd_(&jobz, &uplo, &n32, pa.baseAddress, &n32, &w, &work, &lwork, &iwork, &liwork, &info)
        }
        guard info == 0 else {
            throw TensorError("LAPACK dsyevd: the eigendecomposition of a \(n) x \(n) matrix did not converge (info \(info)); are the features finite?")
        }
        return w
    }
}

/// LAPACK's pivoted Cholesky factorisation on a Swift array.
enum LAPACKCholesky {
    /// A factor G [n, r] (row-major) with G G^T = `a` (n x n, symmetric positive semi-definite),
    /// r its numerical rank: `dpstrf` computes P^T A P = L L^T up to rank r (LAPACK's default
    /// tolerance, n eps max a_ii), and G = P L. A covariance of fewer samples than dimensions has
    /// rank below n, and then G is narrow.
    static func pivoted(_ a: [Double], n: Int) throws -> (factor: [Double], rank: Int) {
        var work = a
        var n32 = Int32(n), rank: Int32 = 0, info: Int32 = 0, tolerance: Double = -1
        var uplo = CChar(UInt8(ascii: "L"))
        var pivots = [Int32](repeating: 0, count: n)
        var scratch = [Double](repeating: 0, count: 2 * n)
        work.withUnsafeMutableBufferPointer { pa in
            dpstrf_(&uplo, &n32, pa.baseAddress, &n32, &pivots, &rank, &tolerance, &scratch, &info)
        }
        // info 1 only says the rank is below n, which covariances of few samples are.
        guard info == 0 || info == 1 else {
            throw TensorError("LAPACK dpstrf: the factorisation of a \(n) x \(n) covariance failed (info \(info)); are the features finite?")
        }
        let r = Int(rank)
        var factor = [Double](repeating: 0, count: n * r)
        for j in 0..<r {
            // Column j of L, rows j..<n (column-major), goes to row pivot[k] of G.
            for k in j..<n { factor[(Int(pivots[k]) - 1) * r + j] = work[j * n + k] }
        }
        return (factor, r)
    }
}

/// Small dense Double matrix helpers for the metrics (row-major).
enum DenseMatrix {
    /// A B for square n x n matrices.
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

    /// A^T B, for A [k, m] and B [k, n] (row-major): [m, n]. The covariance X^T X of centred
    /// features and the congruence V^T S V of the Frechet distance at 2048 dimensions.
    ///
    /// Output rows are split among threads; each thread updates four output rows per pass over
    /// B's row (B's rows stream through cache once per four outputs instead of once per output,
    /// which at 2048 x 2048 is the difference between seconds and a minute).
    static func transposedProduct(_ a: [Double], _ b: [Double], k: Int, m: Int, n: Int) -> [Double] {
        precondition(a.count == k * m && b.count == k * n)
        var out = [Double](repeating: 0, count: m * n)
        let block = 4
        let blocks = (m + block - 1) / block
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { po in
                    let (pa, pb, po) = (UnsafeSendable(pa.baseAddress!), UnsafeSendable(pb.baseAddress!), UnsafeSendable(po.baseAddress!))
                    DispatchQueue.concurrentPerform(iterations: blocks) { blockIndex in
                        let i0 = blockIndex * block, rows = min(block, m - i0)
                        let o = po.value + i0 * n
                        for r in 0..<k {
                            let bRow = pb.value + r * n, aRow = pa.value + r * m + i0
                            if rows == block {
                                let (a0, a1, a2, a3) = (aRow[0], aRow[1], aRow[2], aRow[3])
                                for j in 0..<n {
                                    let v = bRow[j]
                                    o[j] += a0 * v
                                    o[n + j] += a1 * v
                                    o[2 * n + j] += a2 * v
                                    o[3 * n + j] += a3 * v
                                }
                            } else {
                                for q in 0..<rows {
                                    let aq = aRow[q]
                                    for j in 0..<n { o[q * n + j] += aq * bRow[j] }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    static func trace(_ a: [Double], n: Int) -> Double {
        (0..<n).reduce(0) { $0 + a[$1 * n + $1] }
    }
}

/// A pointer handed to `concurrentPerform`'s workers, which write disjoint parts of it.
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
