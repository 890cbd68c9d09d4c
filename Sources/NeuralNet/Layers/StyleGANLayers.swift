import TensorRuntime

/// The named tensors of a sub-module, under `prefix.` (PyTorch's `state_dict` nesting).
func scoped(_ prefix: String, _ named: [(String, Tensor)]) -> [(String, Tensor)] {
    named.map { (prefix + "." + $0.0, $0.1) }
}

/// A fully connected layer with equalized learning rate and a learning-rate multiplier
/// (stylegan2-ada-pytorch's `FullyConnectedLayer`): the stored weight starts as N(0, 1) / lrMul
/// and is scaled by `lrMul / sqrt(in)` at run time, the bias starts at `biasInit` and is scaled
/// by `lrMul`, so Adam's steps on the stored values move the layer `lrMul` times as fast as on an
/// ordinary layer (the mapping network's 0.01). With `leaky`, LeakyReLU 0.2 with gain sqrt(2).
///
/// State names: `weight` [out, in], `bias` [out].
public final class StyleGANFullyConnected {
    public let weight: Tensor
    public let bias: Tensor
    public let weightGain: Float
    public let biasGain: Float
    public let leaky: Bool

    public init(_ inFeatures: Int, _ outFeatures: Int, leaky: Bool = false, lrMultiplier: Float = 1, biasInit: Float = 0,
                rng: inout PhiloxRandom) {
        weight = parameter(Initializers.normal([outFeatures, inFeatures], std: 1 / lrMultiplier, using: &rng))
        bias = parameter(Tensor(repeating: biasInit, shape: [outFeatures]))
        weightGain = lrMultiplier / Float(inFeatures).squareRoot()
        biasGain = lrMultiplier
        self.leaky = leaky
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let y = try linear(x, weight: weight * weightGain, bias: biasGain == 1 ? bias : bias * biasGain)
        return leaky ? try biasActivation(y, bias: nil) : y
    }

    public var namedParameters: [(String, Tensor)] { [("weight", weight), ("bias", bias)] }
}

/// A convolution with equalized learning rate, optional FIR up/downsampling by 2 and bias plus
/// LeakyReLU with gain sqrt(2) (stylegan2-ada-pytorch's `Conv2dLayer`): weight N(0, 1) scaled by
/// `1 / sqrt(in k k)`, "same" padding.
///
/// State names: `weight` [out, in, k, k], `bias` [out] (unless `bias` is false) and the buffer
/// `resample_filter` [4, 4].
public final class StyleGANConv2d {
    public let weight: Tensor
    public let bias: Tensor?
    public let weightGain: Float
    public let leaky: Bool
    public let up: Int, down: Int
    let filter: FIRFilter
    let resampleFilter: Tensor

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, bias: Bool = true, leaky: Bool = true,
                up: Int = 1, down: Int = 1, filter: FIRFilter = .binomial, rng: inout PhiloxRandom) {
        weight = parameter(Initializers.normal([outChannels, inChannels, kernel, kernel], using: &rng))
        self.bias = bias ? parameter(Tensor(zeros: [outChannels])) : nil
        weightGain = 1 / Float(inChannels * kernel * kernel).squareRoot()
        self.leaky = leaky
        self.up = up
        self.down = down
        self.filter = filter
        resampleFilter = filter.matrix
    }

    /// The layer's output times `gain` (a residual branch's sqrt(1/2)).
    public func callAsFunction(_ x: Tensor, gain: Float = 1) throws -> Tensor {
        let y = try conv2dResample(x, weight: weight * weightGain, up: up, down: down, padding: weight.shape[2] / 2, filter: filter)
        return try biasActivation(y, bias: bias, slope: leaky ? 0.2 : nil, gain: (leaky ? Float(2).squareRoot() : 1) * gain)
    }

    public var namedParameters: [(String, Tensor)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }
    public var namedBuffers: [(String, Tensor)] { [("resample_filter", resampleFilter)] }

    /// The output shape for `input` [N, C, H, W].
    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 4, input[1] == weight.shape[1] else {
            throw TensorError("StyleGAN conv (\(weight.shape[1]) -> \(weight.shape[0])): input \(describe(input)) must be [N, \(weight.shape[1]), H, W]")
        }
        if down > 1, input[2] % down != 0 || input[3] % down != 0 {
            throw TensorError("StyleGAN conv: input \(describe(input)) must have a height and width divisible by \(down)")
        }
        return [input[0], weight.shape[0], input[2] * up / down, input[3] * up / down]
    }
}

/// Where a synthesis layer's per-pixel noise comes from.
public enum NoiseMode: Sendable {
    /// Fresh N(0, 1) noise per sample (training).
    case random
    /// The layer's fixed `noise_const` buffer, the same for every sample (sampling: an image is
    /// then a function of its latent alone).
    case constant
    /// No noise.
    case none
}

/// One modulated 3x3 convolution of StyleGAN2's synthesis network (stylegan2-ada-pytorch's
/// `SynthesisLayer`): styles from `w` by an affine layer (bias 1), modulated and demodulated
/// convolution (with FIR upsampling when `up` is 2), per-pixel noise times a learned strength,
/// then bias and LeakyReLU with gain sqrt(2).
///
/// State names: `affine.weight|bias`, `weight` [out, in, 3, 3], `noise_strength` [] (a scalar,
/// from 0), `bias` [out], buffers `resample_filter` [4, 4] and `noise_const` [res, res].
public final class SynthesisLayer {
    public let affine: StyleGANFullyConnected
    public let weight: Tensor
    public let noiseStrength: Tensor
    public let bias: Tensor
    public let resolution: Int
    public let up: Int
    let noiseConst: Tensor
    let resampleFilter: Tensor

    public init(_ inChannels: Int, _ outChannels: Int, wDim: Int, resolution: Int, up: Int = 1, rng: inout PhiloxRandom) {
        affine = StyleGANFullyConnected(wDim, inChannels, biasInit: 1, rng: &rng)
        weight = parameter(Initializers.normal([outChannels, inChannels, 3, 3], using: &rng))
        noiseConst = Initializers.normal([resolution, resolution], using: &rng)
        noiseStrength = parameter(Tensor(zeros: []))
        bias = parameter(Tensor(zeros: [outChannels]))
        self.resolution = resolution
        self.up = up
        resampleFilter = FIRFilter.binomial.matrix
    }

    public func callAsFunction(_ x: Tensor, _ w: Tensor, noise: NoiseMode, rng: inout PhiloxRandom) throws -> Tensor {
        let styles = try affine(w)
        var y = try modulatedConv2d(x, weight: weight, styles: styles, up: up, padding: 1)
        switch noise {
        case .random:
            y = try y + Tensor(randomNormal: [x.shape[0], 1, resolution, resolution], using: &rng) * noiseStrength
        case .constant:
            y = try y + noiseConst.reshaped([1, 1, resolution, resolution]) * noiseStrength
        case .none:
            break
        }
        return try biasActivation(y, bias: bias)
    }

    public var namedParameters: [(String, Tensor)] {
        scoped("affine", affine.namedParameters) + [("weight", weight), ("noise_strength", noiseStrength), ("bias", bias)]
    }
    public var namedBuffers: [(String, Tensor)] { [("resample_filter", resampleFilter), ("noise_const", noiseConst)] }
}

/// The 1x1 modulated convolution (no demodulation) from features to an image, plus bias
/// (stylegan2-ada-pytorch's `ToRGBLayer`); the styles are scaled by `1 / sqrt(in)`.
///
/// State names: `affine.weight|bias`, `weight` [channels, in, 1, 1], `bias` [channels].
public final class ToRGBLayer {
    public let affine: StyleGANFullyConnected
    public let weight: Tensor
    public let bias: Tensor
    let weightGain: Float

    public init(_ inChannels: Int, _ outChannels: Int, wDim: Int, rng: inout PhiloxRandom) {
        affine = StyleGANFullyConnected(wDim, inChannels, biasInit: 1, rng: &rng)
        weight = parameter(Initializers.normal([outChannels, inChannels, 1, 1], using: &rng))
        bias = parameter(Tensor(zeros: [outChannels]))
        weightGain = 1 / Float(inChannels).squareRoot()
    }

    public func callAsFunction(_ x: Tensor, _ w: Tensor) throws -> Tensor {
        let styles = try affine(w) * weightGain
        let y = try modulatedConv2d(x, weight: weight, styles: styles, demodulate: false, padding: 0)
        return try biasActivation(y, bias: bias, slope: nil, gain: 1)
    }

    public var namedParameters: [(String, Tensor)] {
        scoped("affine", affine.namedParameters) + [("weight", weight), ("bias", bias)]
    }
}
