import TensorRuntime

/// Gradient penalties on a discriminator (critic), with gradients of every order: the gradient of
/// D with respect to its input is taken with `createGraph`, so the penalty can be differentiated
/// again with respect to D's weights.
public enum GradientPenalty {
    /// Per-sample Euclidean norms of `g` [N, ...] as [N]. A tiny constant under the square root
    /// keeps the derivative finite where a gradient is exactly zero (PyTorch's norm defines it as 0
    /// there; the value changes by at most 1e-6).
    static func norms(_ g: Tensor) throws -> Tensor {
        try (g.square().sum(axes: Array(1..<g.rank)) + 1e-12).sqrt()
    }

    /// WGAN-GP's penalty (Gulrajani et al., 2017): mean over samples of (||grad D(x^)|| - 1)^2 at
    /// x^ = epsilon real + (1 - epsilon) fake, with one `epsilon` per sample ([N] in [0, 1)).
    ///
    /// `real` and `fake` are taken as constants (the point x^ is a new leaf).
    public static func wgangp(critic: (Tensor) throws -> Tensor, real: Tensor, fake: Tensor, epsilon: Tensor) throws -> Tensor {
        guard real.shape == fake.shape, real.rank >= 2, epsilon.shape == [real.shape[0]] else {
            throw TensorError("gradient penalty: real \(describe(real.shape)), fake \(describe(fake.shape)) and epsilon \(describe(epsilon.shape)) do not fit")
        }
        let point = try withoutGradients {
            let e = try epsilon.reshaped([real.shape[0]] + Array(repeating: 1, count: real.rank - 1))
            return try e * real.detached() + (1 - e) * fake.detached()
        }
        point.requiringGradients()
        let out = try critic(point)
        let g = try gradients(of: out.sum(), wrt: [point], createGraph: true)[0]
        return (try norms(g) - 1).square().mean()
    }

    /// The R1 penalty's expectation (Mescheder et al., 2018): mean over real samples of
    /// ||grad D(x)||^2; a loss adds gamma / 2 times it.
    public static func r1(critic: (Tensor) throws -> Tensor, real: Tensor) throws -> Tensor {
        let point = real.detached().copy().requiringGradients()
        let out = try critic(point)
        let g = try gradients(of: out.sum(), wrt: [point], createGraph: true)[0]
        return try g.square().sum(axes: Array(1..<g.rank)).mean()
    }
}
