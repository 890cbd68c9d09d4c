import TensorRuntime

/// ProGAN's discriminator, the mirror of `ProGANGenerator`: a fromRGB (1x1 convolution,
/// LeakyReLU 0.2) at every resolution and a block per resolution down to 4x4.
///
/// Block k > 0: 3x3 convolution (nf(k+1)), LeakyReLU, 3x3 convolution (nf(k)), LeakyReLU, 2x2
/// average pooling. Block 0: minibatch standard deviation (`groupSize`), 3x3 convolution (nf(1)),
/// LeakyReLU, dense to nf(0), LeakyReLU, dense to 1 (gain 1); the output is one score per image,
/// `[N]`. At resolution `r` (the input's side) with fade-in `alpha`, the features entering block
/// k - 1 are
///
///     lerp(fromRGB[k-1](avgpool(x)), block[k](fromRGB[k](x)), alpha)
///
/// so alpha 1 is the network at `r` and alpha 0 the network at `r / 2` on the pooled images, exactly.
///
/// State names: `fromRGB.<k>.0.weight|bias` and `blocks.<k>.<i>.weight|bias`.
public final class ProGANDiscriminator: Layer {
    public let architecture: ProGANArchitecture
    public let fromRGB: [Sequential]
    public let blocks: [Sequential]

    public init(architecture a: ProGANArchitecture, groupSize: Int = 4, rng: inout PhiloxRandom) {
        self.architecture = a
        let slope = Activation(.leakyRelu(0.2))
        var fromRGB: [Sequential] = []
        var blocks: [Sequential] = []
        for k in 0..<a.levels {
            let n = a.features(stage: k + 1)
            fromRGB.append(Sequential([EqualizedConv2D(a.channels, n, kernel: 1, rng: &rng), slope]))
            if k == 0 {
                let d = a.features(stage: 0)
                var layers: [any Layer] = groupSize > 1 ? [MinibatchStddev(groupSize: groupSize)] : []
                layers += [EqualizedConv2D(n + (groupSize > 1 ? 1 : 0), n, kernel: 3, rng: &rng), slope, Reshape([n * 16]),
                           EqualizedLinear(n * 16, d, rng: &rng), slope, EqualizedLinear(d, 1, gain: 1, rng: &rng), Reshape([])]
                blocks.append(Sequential(layers))
            } else {
                let m = a.features(stage: k)
                blocks.append(Sequential([EqualizedConv2D(n, n, kernel: 3, rng: &rng), slope,
                                          EqualizedConv2D(n, m, kernel: 3, rng: &rng), slope, Downsample2x()]))
            }
        }
        self.fromRGB = fromRGB
        self.blocks = blocks
    }

    /// Scores `[N]` for images `[N, C, r, r]` at resolution r, faded in by `alpha`.
    public func forward(_ x: Tensor, alpha: Float, mode: ForwardMode = .train) throws -> Tensor {
        guard x.rank == 4, x.shape[2] == x.shape[3] else {
            throw TensorError("ProGAN discriminator: expected square images [N, C, H, H], got \(describe(x.shape))")
        }
        let k = try architecture.level(x.shape[2])
        var h = try blocks[k].forward(try fromRGB[k].forward(x, mode: mode), mode: mode)
        if k > 0 && alpha < 1 {
            let low = try fromRGB[k - 1].forward(try x.downsampleArea(factor: 2), mode: mode)
            h = try fade(low, h, alpha: alpha)
        }
        for j in stride(from: k - 1, through: 0, by: -1) { h = try blocks[j].forward(h, mode: mode) }
        return h
    }

    public func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor { try forward(x, alpha: 1, mode: mode) }

    public var namedParameters: [(String, Tensor)] {
        fromRGB.enumerated().flatMap { k, f in f.namedParameters.map { ("fromRGB.\(k).\($0.0)", $0.1) } }
            + blocks.enumerated().flatMap { k, b in b.namedParameters.map { ("blocks.\(k).\($0.0)", $0.1) } }
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 4, input[2] == input[3] else {
            throw TensorError("ProGAN discriminator: expected square images [N, C, H, H], got \(describe(input))")
        }
        let k = try architecture.level(input[2])
        guard input[1] == architecture.channels else {
            throw TensorError("ProGAN discriminator: expected \(architecture.channels)-channel images, got \(describe(input))")
        }
        var s = try fromRGB[k].outputShape(for: input)
        for j in stride(from: k, through: 0, by: -1) { s = try blocks[j].outputShape(for: s) }
        return s
    }
}
