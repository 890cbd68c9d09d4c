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
/// The trace of the square root is taken through a symmetric matrix with the eigenvalues of
/// S1 S2: with S1 = V L V^T and A = V L^(1/2), A^T S2 A is similar to S1^(1/2) S2 S1^(1/2) and so
/// to S1 S2, but symmetric positive semi-definite. Two symmetric eigendecompositions (Jacobi for
/// small matrices, LAPACK's `dsyevd` at Inception's 2048) and two matrix products replace a
/// general matrix square root; tiny negative eigenvalues from rounding are clamped to 0.
public enum FrechetDistance {
    public static func distance(_ a: GaussianStatistics, _ b: GaussianStatistics) throws -> Double {
        guard a.dimension == b.dimension else {
            throw TensorError("Frechet distance: feature sizes \(a.dimension) and \(b.dimension) differ")
        }
        let d = a.dimension
        var meanTerm: Double = 0
        for j in 0..<d { meanTerm += (a.mean[j] - b.mean[j]) * (a.mean[j] - b.mean[j]) }
        let eigen = try SymmetricEigen(a.covariance, n: d)
        var root = eigen.vectors
        for i in 0..<d { for k in 0..<d { root[i * d + k] *= max(eigen.values[k], 0).squareRoot() } }
        // S2 is symmetric, so S2 A = S2^T A.
        let middle = DenseMatrix.transposedProduct(root, DenseMatrix.transposedProduct(b.covariance, root, k: d, m: d, n: d), k: d, m: d, n: d)
        let traceRoot = try SymmetricEigen.values(middle, n: d).reduce(0) { $0 + max($1, 0).squareRoot() }
        return meanTerm + DenseMatrix.trace(a.covariance, n: d) + DenseMatrix.trace(b.covariance, n: d) - 2 * traceRoot
    }

    /// The distance between the Gaussians fitted to two feature sets [n, d] and [m, d].
    public static func distance(_ a: Tensor, _ b: Tensor) throws -> Double {
        try distance(try GaussianStatistics(features: a), try GaussianStatistics(features: b))
    }
}
