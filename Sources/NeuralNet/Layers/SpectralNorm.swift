import TensorRuntime

/// A layer with one weight that a wrapper may replace at forward time (spectral norm).
public protocol WeightedLayer: Layer {
    /// The trainable weight, as the layer stores it.
    var weight: Tensor { get }
    /// The bias, if any.
    var bias: Tensor? { get }
    /// The axis of `weight` that indexes output features: 0 for `Linear` and `Conv2d`, 1 for
    /// `ConvTranspose2d` (PyTorch's `spectral_norm` default `dim`).
    var outputAxis: Int { get }
    /// The forward pass with `weight` in place of the stored one.
    func forward(_ x: Tensor, weight: Tensor) throws -> Tensor
    /// That forward pass followed by a leaky ReLU of `leakySlope` (0: a ReLU), in one op where
    /// the layer has one (`Conv2D`); by default the two ops.
    func forward(_ x: Tensor, weight: Tensor, leakySlope: Float) throws -> Tensor
}

extension WeightedLayer {
    public func forward(_ x: Tensor, weight: Tensor, leakySlope: Float) throws -> Tensor {
        let y = try forward(x, weight: weight)
        return leakySlope == 0 ? y.relu() : y.leakyRelu(negativeSlope: leakySlope)
    }
}

extension Linear: WeightedLayer {
    public var outputAxis: Int { 0 }
    public func forward(_ x: Tensor, weight: Tensor) throws -> Tensor { try linear(x, weight: weight, bias: bias) }
}

extension Conv2D: WeightedLayer {
    public var outputAxis: Int { 0 }
    public func forward(_ x: Tensor, weight: Tensor) throws -> Tensor {
        try conv2d(x, weight: weight, bias: bias, stride: Size2D(stride, stride), padding: Size2D(padding, padding))
    }
    public func forward(_ x: Tensor, weight: Tensor, leakySlope: Float) throws -> Tensor {
        try conv2d(x, weight: weight, bias: bias, stride: Size2D(stride, stride), padding: Size2D(padding, padding),
                   leakySlope: leakySlope)
    }
}

extension ConvTranspose2D: WeightedLayer {
    public var outputAxis: Int { 1 }
    public func forward(_ x: Tensor, weight: Tensor) throws -> Tensor {
        try convTranspose2d(x, weight: weight, bias: bias, stride: Size2D(stride, stride), padding: Size2D(padding, padding),
                            outputPadding: Size2D(outputPadding, outputPadding))
    }
}

/// Spectral normalisation (Miyato et al., 2018) of a layer's weight, as PyTorch's
/// `torch.nn.utils.spectral_norm`: the layer runs with `W / sigma(W)`, where sigma is the largest
/// singular value of W reshaped to [outputs, -1], estimated by power iteration.
///
/// State names match that function's `state_dict`: `weight_orig` (the trainable W), `bias`,
/// and the buffers `weight_u` [outputs] and `weight_v` [inputs * kh * kw]. In a training forward
/// pass (`ForwardMode.train`), `powerIterations` rounds of
///
///     v = normalize(W^T u),  u = normalize(W v)
///
/// update the buffers in place, as PyTorch does in training mode; `ForwardMode.sample` and `eval`
/// reuse the stored vectors without changing them. Then sigma = u . (W v), with u and v constants
/// for autograd, so the gradient flows to W through sigma and through W itself.
///
/// In a `Sequential`, the ReLU or leaky ReLU after it runs in the wrapped layer's own op where
/// that layer has one (a convolution's post-op: `ActivationFusing`).
public final class SpectralNorm: ActivationFusing {
    public let layer: any WeightedLayer
    /// Left singular vector estimate, [outputs].
    public let u: Tensor
    /// Right singular vector estimate, [weight.count / outputs].
    public let v: Tensor
    public let powerIterations: Int
    public let eps: Float

    /// Wraps `layer`; u and v start as normalised N(0, 1) draws from `rng` (u first), as in PyTorch.
    public init(_ layer: any WeightedLayer, powerIterations: Int = 1, eps: Float = 1e-12, rng: inout PhiloxRandom) {
        self.layer = layer
        let rows = layer.weight.shape[layer.outputAxis]
        let columns = layer.weight.count / rows
        u = Tensor(randomNormal: [rows], using: &rng)
        v = Tensor(randomNormal: [columns], using: &rng)
        self.powerIterations = powerIterations
        self.eps = eps
        Self.normalize(u.data, rows, eps)
        Self.normalize(v.data, columns, eps)
    }

    /// The weight as a matrix [outputs, rest]; recorded, so gradients reach `weight`.
    public func weightMatrix() throws -> Tensor {
        let w = layer.weight
        let rows = w.shape[layer.outputAxis]
        let ordered = layer.outputAxis == 0 ? w : try w.transposed(0, layer.outputAxis)
        return try ordered.reshaped([rows, w.count / rows])
    }

    /// Runs the power iteration on the buffers (`rounds` times), without recording.
    public func updateVectors(rounds: Int) throws {
        guard rounds > 0 else { return }
        try withoutGradients {
            let m = try weightMatrix().detached()
            let rows = m.shape[0], columns = m.shape[1]
            for _ in 0..<rounds {
                let wtu = try matmul(m, try u.reshaped([rows, 1]), transposeA: true)
                try v.assign(wtu)
                Self.normalize(v.data, columns, eps)
                let wv = try matmul(m, try v.reshaped([columns, 1]))
                try u.assign(wv)
                Self.normalize(u.data, rows, eps)
            }
        }
    }

    /// sigma = u . (W v) with the current buffers, differentiable with respect to the weight.
    public func sigma() throws -> Tensor {
        let m = try weightMatrix()
        let rows = m.shape[0], columns = m.shape[1]
        let wv = try matmul(m, try v.copy().reshaped([columns, 1]))
        return try (wv * (try u.copy().reshaped([rows, 1]))).sum()
    }

    /// The normalised weight W / sigma, in the layer's own layout.
    public func normalizedWeight() throws -> Tensor {
        try layer.weight / sigma()
    }

    public func forward(_ x: Tensor, mode: ForwardMode, leakySlope: Float?) throws -> Tensor {
        if mode.training && mode.updateStatistics { try updateVectors(rounds: powerIterations) }
        let weight = try normalizedWeight()
        guard let leakySlope else { return try layer.forward(x, weight: weight) }
        return try layer.forward(x, weight: weight, leakySlope: leakySlope)
    }

    public var namedParameters: [(String, Tensor)] {
        [("weight_orig", layer.weight)] + (layer.bias.map { [("bias", $0)] } ?? [])
    }

    public var namedBuffers: [(String, Tensor)] { [("weight_u", u), ("weight_v", v)] }

    public func outputShape(for input: [Int]) throws -> [Int] { try layer.outputShape(for: input) }

    /// x / max(||x||, eps), in place.
    static func normalize(_ p: UnsafeMutablePointer<Float>, _ n: Int, _ eps: Float) {
        var sum: Double = 0
        for i in 0..<n { sum += Double(p[i]) * Double(p[i]) }
        let scale = 1 / max(Float(sum.squareRoot()), eps)
        for i in 0..<n { p[i] *= scale }
    }
}
