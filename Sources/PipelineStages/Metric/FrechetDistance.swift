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
        let x = features.scalars
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += Double(x[i * d + j]) } }
        for j in 0..<d { mean[j] /= Double(n) }
        var cov = [Double](repeating: 0, count: d * d)
        var row = [Double](repeating: 0, count: d)
        for i in 0..<n {
            for j in 0..<d { row[j] = Double(x[i * d + j]) - mean[j] }
            for j in 0..<d {
                let rj = row[j]
                if rj == 0 { continue }
                for k in j..<d { cov[j * d + k] += rj * row[k] }
            }
        }
        for j in 0..<d {
            for k in j..<d {
                cov[j * d + k] /= Double(n - 1)
                cov[k * d + j] = cov[j * d + k]
            }
        }
        self.init(mean: mean, covariance: cov)
    }
}

/// The Frechet distance between two Gaussians fitted to feature sets (FID, when the features
/// are Inception's; here they are usually a classifier's penultimate layer):
///
///     ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))
///
/// The trace of the square root is taken through the symmetric form S1^(1/2) S2 S1^(1/2), which
/// has the same eigenvalues as S1 S2 but is symmetric positive semi-definite, so both square roots
/// come from symmetric eigendecompositions (Jacobi) instead of a general matrix square root; tiny
/// negative eigenvalues from rounding are clamped to 0.
public enum FrechetDistance {
    public static func distance(_ a: GaussianStatistics, _ b: GaussianStatistics) throws -> Double {
        guard a.dimension == b.dimension else {
            throw TensorError("Frechet distance: feature sizes \(a.dimension) and \(b.dimension) differ")
        }
        let d = a.dimension
        var meanTerm: Double = 0
        for j in 0..<d { meanTerm += (a.mean[j] - b.mean[j]) * (a.mean[j] - b.mean[j]) }
        let rootA = SymmetricEigen(a.covariance, n: d).map { max($0, 0).squareRoot() }
        let middle = DenseMatrix.multiply(DenseMatrix.multiply(rootA, b.covariance, n: d), rootA, n: d)
        let traceRoot = SymmetricEigen(middle, n: d).values.reduce(0) { $0 + max($1, 0).squareRoot() }
        return meanTerm + DenseMatrix.trace(a.covariance, n: d) + DenseMatrix.trace(b.covariance, n: d) - 2 * traceRoot
    }

    /// The distance between the Gaussians fitted to two feature sets [n, d] and [m, d].
    public static func distance(_ a: Tensor, _ b: Tensor) throws -> Double {
        try distance(try GaussianStatistics(features: a), try GaussianStatistics(features: b))
    }
}
