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

extension GradientPenalty {
    /// Per-sample norms of the gradient with respect to a whole pyramid: the square root of the
    /// sum of squares over every scale, as if the scales were one input vector.
    static func norms(_ gs: [Tensor]) throws -> Tensor {
        var total = try gs[0].square().sum(axes: Array(1..<gs[0].rank))
        for g in gs.dropFirst() { total = try total + g.square().sum(axes: Array(1..<g.rank)) }
        return (total + 1e-12).sqrt()
    }

    /// WGAN-GP over a multi-scale input (MSG-GAN): every scale of x^ interpolates real and fake
    /// with the same per-sample `epsilon`, so x^ lies on the segment between the two pyramids,
    /// and the norm is that of the gradient with respect to all scales at once.
    public static func wgangp(critic: ([Tensor]) throws -> Tensor, real: [Tensor], fake: [Tensor], epsilon: Tensor) throws -> Tensor {
        guard real.count == fake.count, !real.isEmpty, zip(real, fake).allSatisfy({ $0.shape == $1.shape && $0.rank >= 2 }),
              epsilon.shape == [real[0].shape[0]] else {
            throw TensorError("gradient penalty: real \(real.map { describe($0.shape) }), fake \(fake.map { describe($0.shape) }) and epsilon \(describe(epsilon.shape)) do not fit")
        }
        let points = try withoutGradients {
            try zip(real, fake).map { r, f in
                let e = try epsilon.reshaped([r.shape[0]] + Array(repeating: 1, count: r.rank - 1))
                return try e * r.detached() + (1 - e) * f.detached()
            }
        }
        for p in points { p.requiringGradients() }
        let g = try gradients(of: try critic(points).sum(), wrt: points, createGraph: true)
        return (try norms(g) - 1).square().mean()
    }

    /// R1 over a multi-scale input: the mean over real samples of the squared gradient norm with
    /// respect to all scales.
    public static func r1(critic: ([Tensor]) throws -> Tensor, real: [Tensor]) throws -> Tensor {
        let points = real.map { $0.detached().copy().requiringGradients() }
        let g = try gradients(of: try critic(points).sum(), wrt: points, createGraph: true)
        return try norms(g).square().mean()
    }
}
