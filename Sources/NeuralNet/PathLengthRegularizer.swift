import TensorRuntime

/// StyleGAN2's path-length regularization (Karras et al., 2020, section 3.2): for images `y` of
/// `w`s and a random image-space direction `u` ~ N(0, 1) / sqrt(H W), the length
/// `|J_w^T u|` (the gradient of `sum(y u)` with respect to `w`, its squared norm over the `w`
/// dimension averaged over the synthesis inputs, square-rooted) is pulled towards its running
/// mean `a`; `a` moves towards each batch's mean length with `decay` (0.01).
///
/// The gradient is taken with `createGraph`, so the penalty is differentiated again with respect
/// to the generator's weights (second order, as stylegan2-ada-pytorch's `Gpl` phase).
public struct PathLengthRegularizer: Sendable {
    /// The running mean length `a` (`pl_mean`).
    public var mean: Float
    public let decay: Float

    public init(decay: Float = 0.01, mean: Float = 0) {
        self.decay = decay
        self.mean = mean
    }

    /// The direction `u` for `images`: N(0, 1) scaled by `1 / sqrt(H W)`.
    public static func direction(like images: Tensor, rng: inout PhiloxRandom) -> Tensor {
        let scale = 1 / Float(images.shape[2] * images.shape[3]).squareRoot()
        return Tensor(randomNormal: images.shape, std: scale, using: &rng)
    }

    /// Per-sample lengths [N] of `J^T u` for `images` [N, C, H, W] made from `ws` [N, numWs, wDim].
    public static func lengths(images: Tensor, ws: Tensor, direction: Tensor) throws -> Tensor {
        let g = try gradients(of: (images * direction).sum(), wrt: [ws], createGraph: true)[0]
        return try g.square().sum(axes: [2]).mean(axes: [1]).sqrt()
    }

    /// The penalty `mean over samples of (length - a)^2` (unweighted), after moving `a` towards
    /// this batch's mean length.
    public mutating func penalty(images: Tensor, ws: Tensor, direction: Tensor) throws -> (penalty: Tensor, lengths: Tensor) {
        let lengths = try Self.lengths(images: images, ws: ws, direction: direction)
        mean += (lengths.detached().mean().item() - mean) * decay
        return ((lengths - mean).square().mean(), lengths)
    }
}
