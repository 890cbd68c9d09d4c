import TensorRuntime

/// He's constant `gain / sqrt(fanIn)`: the scale equalized-learning-rate layers apply to their
/// N(0, 1) weights at run time.
public func heScale(gain: Float, fanIn: Int) -> Float { gain / Float(fanIn).squareRoot() }

/// A convolution with equalized learning rate (Karras et al., 2018, section 4.1): the stored
/// weight is drawn from N(0, 1) and multiplied by `gain / sqrt(in * k * k)` on every forward pass,
/// so Adam's per-parameter step sizes act alike on every layer. Bias starts at zero. "Same"
/// padding (`kernel / 2`), stride 1, as every convolution of ProGAN and MSG-GAN.
public final class EqualizedConv2D: ActivationFusing {
    /// [out, in, k, k], N(0, 1) at creation.
    public let weight: Tensor
    public let bias: Tensor
    /// `gain / sqrt(fanIn)`, applied at run time.
    public let scale: Float

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, gain: Float = Float(2).squareRoot(), rng: inout PhiloxRandom) {
        weight = parameter(Initializers.normal([outChannels, inChannels, kernel, kernel], using: &rng))
        bias = parameter(Tensor(zeros: [outChannels]))
        scale = heScale(gain: gain, fanIn: inChannels * kernel * kernel)
    }

    /// The convolution followed by a leaky ReLU of `leakySlope` (0: a ReLU) in one op, when it
    /// is given (`conv2d(...leakySlope:)`).
    public func forward(_ x: Tensor, mode: ForwardMode, leakySlope: Float?) throws -> Tensor {
        let p = weight.shape[2] / 2
        return try conv2d(x, weight: weight * scale, bias: bias, padding: Size2D(p, p), leakySlope: leakySlope)
    }

    public var namedParameters: [(String, Tensor)] { [("weight", weight), ("bias", bias)] }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 4, input[1] == weight.shape[1] else {
            throw TensorError("EqualizedConv2d(\(weight.shape[1]) -> \(weight.shape[0])): input \(describe(input)) must be [N, \(weight.shape[1]), H, W]")
        }
        return [input[0], weight.shape[0], input[2], input[3]]
    }
}

/// A fully connected layer with equalized learning rate: weight [out, in] from N(0, 1), scaled by
/// `gain / sqrt(in)` at run time; bias from zero.
///
/// With `featureMap` set to a side `s`, the output is reshaped to `[N, out / s^2, s, s]` before a
/// per-channel bias is added (ProGAN's first generator layer: the latent to a 4x4 map, bias per
/// feature map as in the official code).
public final class EqualizedLinear: Layer {
    public let weight: Tensor
    public let bias: Tensor
    public let scale: Float
    public let featureMap: Int?

    public init(_ inFeatures: Int, _ outFeatures: Int, gain: Float = Float(2).squareRoot(), featureMap: Int? = nil,
                rng: inout PhiloxRandom) {
        weight = parameter(Initializers.normal([outFeatures, inFeatures], using: &rng))
        let side = featureMap ?? 1
        precondition(outFeatures % (side * side) == 0, "EqualizedLinear: \(outFeatures) outputs are not whole \(side)x\(side) maps")
        bias = parameter(Tensor(zeros: [outFeatures / (side * side)]))
        scale = heScale(gain: gain, fanIn: inFeatures)
        self.featureMap = featureMap
    }

    public func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor {
        guard let side = featureMap else { return try linear(x, weight: weight * scale, bias: bias) }
        let y = try linear(x, weight: weight * scale, bias: nil)
        return try y.reshaped([x.shape[0], bias.shape[0], side, side]) + bias.reshaped([1, bias.shape[0], 1, 1])
    }

    public var namedParameters: [(String, Tensor)] { [("weight", weight), ("bias", bias)] }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 2, input[1] == weight.shape[1] else {
            throw TensorError("EqualizedLinear(\(weight.shape[1]) -> \(weight.shape[0])): input \(describe(input)) must be [N, \(weight.shape[1])]")
        }
        if let side = featureMap { return [input[0], bias.shape[0], side, side] }
        return [input[0], weight.shape[0]]
    }
}

/// Pixelwise feature normalisation (`Tensor.pixelNorm`) as a layer.
public final class PixelNorm: Layer {
    public init() {}
    public func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor { try x.pixelNorm() }
}

/// The minibatch standard deviation layer (`Tensor.minibatchStddev`): one more feature map.
public final class MinibatchStddev: Layer {
    public let groupSize: Int
    public init(groupSize: Int) { self.groupSize = groupSize }

    public func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor { try x.minibatchStddev(groupSize: groupSize) }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 4 else { throw TensorError("MinibatchStddev: input \(describe(input)) must be [N, C, H, W]") }
        let group = min(groupSize, input[0])
        guard group > 0, input[0] % group == 0 else {
            throw TensorError("MinibatchStddev: batch size \(input[0]) is not a multiple of the group size \(group)")
        }
        return [input[0], input[1] + 1, input[2], input[3]]
    }
}

/// Nearest-neighbour upsampling by 2 (ProGAN's `upscale2d`).
public final class Upsample2x: Layer {
    public init() {}
    public func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor { try x.upsampleNearest(factor: 2) }
    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 4 else { throw TensorError("Upsample2x: input \(describe(input)) must be [N, C, H, W]") }
        return [input[0], input[1], input[2] * 2, input[3] * 2]
    }
}

/// 2x2 average pooling (ProGAN's `downscale2d`).
public final class Downsample2x: Layer {
    public init() {}
    public func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor { try x.downsampleArea(factor: 2) }
    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 4, input[2] % 2 == 0, input[3] % 2 == 0 else {
            throw TensorError("Downsample2x: input \(describe(input)) must be [N, C, H, W] with even H and W")
        }
        return [input[0], input[1], input[2] / 2, input[3] / 2]
    }
}

/// `low * (1 - alpha) + high * alpha`, exact at both ends: alpha 0 gives `low` and alpha 1 gives
/// `high` bit for bit (a product by 0 adds exactly 0, a product by 1 is the value itself).
public func fade(_ low: Tensor, _ high: Tensor, alpha: Float) throws -> Tensor {
    try low * (1 - alpha) + high * alpha
}
