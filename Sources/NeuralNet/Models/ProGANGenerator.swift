import TensorRuntime

/// ProGAN's generator, grown from 4x4 to `architecture.target`: a block per resolution and a
/// toRGB (1x1 convolution, linear) at every one.
///
/// Block 0: pixel norm of the latent (optional), an equalized dense layer to a 4x4 map (gain
/// sqrt(2)/4, bias per map), LeakyReLU 0.2, pixel norm, 3x3 convolution, LeakyReLU, pixel norm.
/// Block k > 0: nearest 2x upsampling, then twice (3x3 convolution, LeakyReLU, pixel norm).
/// Every layer has equalized learning rate. At resolution `r` with fade-in `alpha` the output is
///
///     lerp(upsample(toRGB[k-1](h[k-1])), toRGB[k](h[k]), alpha)
///
/// (the official `grow` with `lod_in = level(target) - level(r) + 1 - alpha`); alpha 1 is the network
/// at `r` alone and alpha 0 the network at `r / 2`, upsampled, both exactly.
///
/// State names: `blocks.<k>.<i>.weight|bias` and `toRGB.<k>.weight|bias`.
public final class ProGANGenerator: Layer {
    public let architecture: ProGANArchitecture
    public let latent: Int
    public let blocks: [Sequential]
    public let toRGB: [EqualizedConv2D]

    public init(latent: Int, architecture a: ProGANArchitecture, normalizeLatent: Bool = true, rng: inout PhiloxRandom) {
        self.architecture = a
        self.latent = latent
        let slope = Activation(.leakyRelu(0.2))
        var blocks: [Sequential] = []
        var toRGB: [EqualizedConv2D] = []
        for k in 0..<a.levels {
            let n = a.features(stage: k + 1)
            var layers: [any Layer] = []
            if k == 0 {
                if normalizeLatent { layers.append(PixelNorm()) }
                layers += [EqualizedLinear(latent, n * 16, gain: Float(2).squareRoot() / 4, featureMap: 4, rng: &rng),
                           slope, PixelNorm(), EqualizedConv2D(n, n, kernel: 3, rng: &rng), slope, PixelNorm()]
            } else {
                let m = a.features(stage: k)
                layers += [Upsample2x(), EqualizedConv2D(m, n, kernel: 3, rng: &rng), slope, PixelNorm(),
                           EqualizedConv2D(n, n, kernel: 3, rng: &rng), slope, PixelNorm()]
            }
            blocks.append(Sequential(layers))
            toRGB.append(EqualizedConv2D(n, a.channels, kernel: 1, gain: 1, rng: &rng))
        }
        self.blocks = blocks
        self.toRGB = toRGB
    }

    /// Images at `resolution`, faded in by `alpha` from the resolution below.
    public func forward(_ z: Tensor, resolution: Int, alpha: Float, mode: ForwardMode = .train) throws -> Tensor {
        let k = try architecture.level(resolution)
        var h = try blocks[0].forward(z, mode: mode)
        guard k > 0 else { return try toRGB[0].forward(h, mode: mode) }
        for j in 1..<k { h = try blocks[j].forward(h, mode: mode) }
        let previous = h
        h = try blocks[k].forward(h, mode: mode)
        let image = try toRGB[k].forward(h, mode: mode)
        guard alpha < 1 else { return image }
        let low = try toRGB[k - 1].forward(previous, mode: mode).upsampleNearest(factor: 2)
        return try fade(low, image, alpha: alpha)
    }

    /// The full-resolution network (alpha 1 at the target).
    public func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor {
        try forward(x, resolution: architecture.target, alpha: 1, mode: mode)
    }

    public var namedParameters: [(String, Tensor)] {
        blocks.enumerated().flatMap { k, b in b.namedParameters.map { ("blocks.\(k).\($0.0)", $0.1) } }
            + toRGB.enumerated().flatMap { k, t in t.namedParameters.map { ("toRGB.\(k).\($0.0)", $0.1) } }
    }

    /// The images' shape at `resolution` for latents of `input` ([N, latent]).
    public func outputShape(for input: [Int], resolution: Int) throws -> [Int] {
        let k = try architecture.level(resolution)
        var s = input
        for j in 0...k { s = try blocks[j].outputShape(for: s) }
        return try toRGB[k].outputShape(for: s)
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        try outputShape(for: input, resolution: architecture.target)
    }
}
