/// Weight initialisation with the definitions of PyTorch's `torch.nn.init`.
///
/// Every function returns a new tensor of the given shape whose values are drawn from `rng`, in
/// row-major order. The distributions (bounds, standard deviations, fans and gains) are PyTorch's
/// exactly; the random streams are ours (Philox), so values are not PyTorch's values.
public enum Initializers {
    /// Whether the scale is set from the fan-in (preserves activations' variance in the forward
    /// pass) or the fan-out (gradients' variance in the backward pass).
    public enum FanMode: String, Sendable, Codable {
        case fanIn
        case fanOut
    }

    /// The nonlinearity that follows a layer, which sets the recommended gain.
    public enum Nonlinearity: Sendable, Equatable {
        case linear
        /// Any convolution (`conv1d`, `conv2d`, `convTranspose2d`, ...): gain 1, like linear.
        case conv
        case sigmoid
        case tanh
        case relu
        /// Leaky ReLU with this negative slope (PyTorch's default for `calculate_gain` is 0.01).
        case leakyRelu(negativeSlope: Float)
        case selu
    }

    /// The number of inputs and outputs each unit sees, as `torch.nn.init._calculate_fan_in_and_fan_out`.
    ///
    /// Axis 1 times the receptive field (the product of axes 2...) is the fan-in; axis 0 times the
    /// receptive field the fan-out. For `Linear` weights `[out, in]` and `Conv2d` weights
    /// `[out, in, kh, kw]` that is the usual meaning. For `ConvTranspose2d` weights
    /// `[in, out, kh, kw]` PyTorch applies the same rule, so the "fan-in" is `out * kh * kw`; we do
    /// the same, so default initialisations match PyTorch's.
    public static func fans(_ shape: [Int]) throws -> (fanIn: Int, fanOut: Int) {
        guard shape.count >= 2 else {
            throw TensorError("fans: a weight needs at least 2 axes to have a fan-in and fan-out, got shape \(describe(shape))")
        }
        let receptiveField = shape.dropFirst(2).reduce(1, *)
        return (shape[1] * receptiveField, shape[0] * receptiveField)
    }

    /// The recommended gain for `nonlinearity`, as `torch.nn.init.calculate_gain`.
    public static func gain(_ nonlinearity: Nonlinearity) -> Float {
        switch nonlinearity {
        case .linear, .conv, .sigmoid: 1
        case .tanh: 5.0 / 3
        case .relu: Float(2).squareRoot()
        case .leakyRelu(let slope): (2 / (1 + slope * slope)).squareRoot()
        case .selu: 3.0 / 4
        }
    }

    /// Values from N(mean, std^2), as `normal_`.
    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1, using rng: inout PhiloxRandom) -> Tensor {
        Tensor(randomNormal: shape, mean: mean, std: std, using: &rng)
    }

    /// Values from U(low, high), as `uniform_`.
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, using rng: inout PhiloxRandom) -> Tensor {
        Tensor(randomUniform: shape, low: low, high: high, using: &rng)
    }

    /// Glorot uniform: U(-a, a) with a = gain * sqrt(6 / (fanIn + fanOut)), as `xavier_uniform_`.
    public static func xavierUniform(_ shape: [Int], gain: Float = 1, using rng: inout PhiloxRandom) throws -> Tensor {
        let bound = try xavierStd(shape, gain: gain) * Float(3).squareRoot()
        return uniform(shape, low: -bound, high: bound, using: &rng)
    }

    /// Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fanIn + fanOut)), as `xavier_normal_`.
    public static func xavierNormal(_ shape: [Int], gain: Float = 1, using rng: inout PhiloxRandom) throws -> Tensor {
        normal(shape, std: try xavierStd(shape, gain: gain), using: &rng)
    }

    /// He uniform: U(-b, b) with b = gain * sqrt(3 / fan), as `kaiming_uniform_`.
    ///
    /// As in PyTorch, `a` is the negative slope used for the gain when `nonlinearity` is
    /// `.leakyRelu` (the slope inside that case is then ignored); the defaults give gain sqrt(2).
    public static func kaimingUniform(
        _ shape: [Int], a: Float = 0, mode: FanMode = .fanIn, nonlinearity: Nonlinearity = .leakyRelu(negativeSlope: 0),
        using rng: inout PhiloxRandom
    ) throws -> Tensor {
        let bound = try kaimingStd(shape, a: a, mode: mode, nonlinearity: nonlinearity) * Float(3).squareRoot()
        return uniform(shape, low: -bound, high: bound, using: &rng)
    }

    /// He normal: N(0, std^2) with std = gain / sqrt(fan), as `kaiming_normal_`.
    public static func kaimingNormal(
        _ shape: [Int], a: Float = 0, mode: FanMode = .fanIn, nonlinearity: Nonlinearity = .leakyRelu(negativeSlope: 0),
        using rng: inout PhiloxRandom
    ) throws -> Tensor {
        normal(shape, std: try kaimingStd(shape, a: a, mode: mode, nonlinearity: nonlinearity), using: &rng)
    }

    /// PyTorch's default weight of `Linear`, `Conv*d` and `ConvTranspose*d`:
    /// `kaiming_uniform_(a: sqrt(5))`, which is U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
    public static func defaultWeight(_ shape: [Int], using rng: inout PhiloxRandom) throws -> Tensor {
        try kaimingUniform(shape, a: Float(5).squareRoot(), using: &rng)
    }

    /// PyTorch's default bias for a layer with weight shape `weightShape`:
    /// U(-1/sqrt(fanIn), 1/sqrt(fanIn)), or zeros when the fan-in is 0.
    public static func defaultBias(_ count: Int, weightShape: [Int], using rng: inout PhiloxRandom) throws -> Tensor {
        let fanIn = try fans(weightShape).fanIn
        let bound: Float = fanIn > 0 ? 1 / Float(fanIn).squareRoot() : 0
        return uniform([count], low: -bound, high: bound, using: &rng)
    }

    /// The standard deviation `xavierNormal` uses.
    public static func xavierStd(_ shape: [Int], gain: Float = 1) throws -> Float {
        let (fanIn, fanOut) = try fans(shape)
        return gain * (2 / Float(fanIn + fanOut)).squareRoot()
    }

    /// The standard deviation `kaimingNormal` uses (the uniform bound is sqrt(3) times it).
    public static func kaimingStd(
        _ shape: [Int], a: Float = 0, mode: FanMode = .fanIn, nonlinearity: Nonlinearity = .leakyRelu(negativeSlope: 0)
    ) throws -> Float {
        let (fanIn, fanOut) = try fans(shape)
        let fan = mode == .fanIn ? fanIn : fanOut
        let g: Float
        if case .leakyRelu = nonlinearity {
            g = gain(.leakyRelu(negativeSlope: a))
        } else {
            g = gain(nonlinearity)
        }
        return g / Float(fan).squareRoot()
    }
}
