import TensorRuntime

/// The mean and covariance of a set of feature vectors, in Double.
public struct GaussianStatistics: Sendable {
    public let mean: [Double]
    /// Row-major d x d, unbiased (divided by n - 1), as `numpy.cov`.
    public let covariance: [Double]
    public let dimension: Int

    public init(mean: [Double], covariance: [Double]) {
        precondition(covariance.count == mean.count * mean.count)
        self.mean = mean
        self.covariance = covariance
        dimension = mean.count
    }

    /// The statistics of the rows of `features` [n, d] (n >= 2).
    public init(features: Tensor) throws {
        guard features.rank == 2, features.shape[0] >= 2 else {
            throw TensorError("feature statistics need at least 2 feature vectors [n, d], found \(describe(features.shape))")
        }
        let n = features.shape[0], d = features.shape[1]
        var centred = features.scalars.map(Double.init)
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += centred[i * d + j] } }
        for j in 0..<d { mean[j] /= Double(n) }
        for i in 0..<n { for j in 0..<d { centred[i * d + j] -= mean[j] } }
        var cov = DenseMatrix.transposedProduct(centred, centred, k: n, m: d, n: d)
        for j in 0..<(d * d) { cov[j] /= Double(n - 1) }
        self.init(mean: mean, covariance: cov)
    }
}

/// The Frechet distance between two Gaussians fitted to feature sets (FID, when the features
/// are Inception's; here they are usually a classifier's penultimate layer):
///
///     ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))
///
/// The trace of the square root is taken through a symmetric matrix with the nonzero eigenvalues
/// of S1 S2: with S1 = G G^T (a pivoted Cholesky factor G [d, r], r the rank of S1), G^T S2 G is
/// similar to the nonzero part of S1 S2 but symmetric positive semi-definite. A factorisation, two
/// matrix products and one symmetric eigendecomposition without eigenvectors (Jacobi up to 256
/// rows, LAPACK's `dsyevd` beyond) replace a general matrix square root; a covariance of fewer
/// samples than dimensions (a metric on 128 samples of 2048-d features) makes the eigenproblem
/// r x r. Tiny negative eigenvalues from rounding are clamped to 0.
public enum FrechetDistance {
    public static func distance(_ a: GaussianStatistics, _ b: GaussianStatistics) throws -> Double {
        guard a.dimension == b.dimension else {
            throw TensorError("Frechet distance: feature sizes \(a.dimension) and \(b.dimension) differ")
        }
        let d = a.dimension
        var meanTerm: Double = 0
        for j in 0..<d { meanTerm += (a.mean[j] - b.mean[j]) * (a.mean[j] - b.mean[j]) }
        let (g, r) = try LAPACKCholesky.pivoted(a.covariance, n: d)
        var traceRoot = 0.0
        if r > 0 {
            // S2 is symmetric, so S2 G = S2^T G.
            let s2g = DenseMatrix.transposedProduct(b.covariance, g, k: d, m: d, n: r)
            let middle = DenseMatrix.transposedProduct(g, s2g, k: d, m: r, n: r)
            traceRoot = try SymmetricEigen.values(middle, n: r).reduce(0) { $0 + max($1, 0).squareRoot() }
        }
        return meanTerm + DenseMatrix.trace(a.covariance, n: d) + DenseMatrix.trace(b.covariance, n: d) - 2 * traceRoot
    }

    /// The distance between the Gaussians fitted to two feature sets [n, d] and [m, d].
    public static func distance(_ a: Tensor, _ b: Tensor) throws -> Double {
        try distance(try GaussianStatistics(features: a), try GaussianStatistics(features: b))
    }
}
