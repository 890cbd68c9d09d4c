import ImageIO
import TensorRuntime

/// Reference statistics in pytorch-fid's `.npz` layout: `mu` [d] and `sigma` [d, d].
extension GaussianStatistics {
    /// Reads `mu` and `sigma` from a `.npz` written by `ganflow score --save-stats`, pytorch-fid
    /// (`--save-stats`) or `numpy.savez`, float32 or float64.
    public init(npz path: String) throws {
        let arrays = try NumPyArchive.read(path, names: ["mu", "sigma"])
        let mu = arrays["mu"]!, sigma = arrays["sigma"]!
        guard mu.shape.count == 1, mu.shape[0] >= 1 else {
            throw ImageIOError(path: path, "'mu' has shape \(describe(mu.shape)), expected a vector [d]")
        }
        let d = mu.shape[0]
        guard sigma.shape == [d, d] else {
            throw ImageIOError(path: path, "'sigma' has shape \(describe(sigma.shape)), expected [\(d), \(d)] to match 'mu' [\(d)]")
        }
        guard mu.values.allSatisfy(\.isFinite), sigma.values.allSatisfy(\.isFinite) else {
            throw ImageIOError(path: path, "'mu' or 'sigma' holds values that are not finite")
        }
        self.init(mean: mu.values, covariance: sigma.values)
    }

    /// Writes `mu` and `sigma` (float64) as pytorch-fid reads them.
    public func write(npz path: String) throws {
        try NumPyArchive.write([("mu", NumPyArray(shape: [dimension], values: mean)),
                                ("sigma", NumPyArray(shape: [dimension, dimension], values: covariance))], to: path)
    }
}
