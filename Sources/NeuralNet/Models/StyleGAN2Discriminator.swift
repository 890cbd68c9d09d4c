import TensorRuntime

/// How a discriminator block joins its convolutions (stylegan2-ada-pytorch's `architecture` of
/// `DiscriminatorBlock`): "resnet" adds a 1x1 downsampling skip, config F's choice; "orig" is
/// the plain chain of convolutions, that repository's choice for CIFAR-10.
public enum StyleGAN2DiscriminatorBlocks: String, Sendable, CaseIterable {
    case resnet, orig
}

/// One resolution of StyleGAN2's discriminator (stylegan2-ada-pytorch's `DiscriminatorBlock`):
/// fromRGB in the first block, two 3x3 convolutions (the second downsampling with the FIR
/// filter); with "resnet" blocks, beside them a 1x1 downsampling skip without bias, both
/// branches scaled by sqrt(1/2).
///
/// State names: `fromrgb.*` (first block), `conv0.*`, `conv1.*`, `skip.weight` (resnet), buffer
/// `resample_filter`.
public final class DiscriminatorBlock {
    public let fromRGB: StyleGANConv2d?
    public let conv0: StyleGANConv2d
    public let conv1: StyleGANConv2d
    public let skip: StyleGANConv2d?
    public let resolution: Int
    let resampleFilter: Tensor

    public init(inChannels: Int, tmpChannels: Int, outChannels: Int, resolution: Int, imageChannels: Int,
                kind: StyleGAN2DiscriminatorBlocks = .resnet, rng: inout PhiloxRandom) {
        fromRGB = inChannels == 0 ? StyleGANConv2d(imageChannels, tmpChannels, kernel: 1, rng: &rng) : nil
        conv0 = StyleGANConv2d(tmpChannels, tmpChannels, kernel: 3, rng: &rng)
        conv1 = StyleGANConv2d(tmpChannels, outChannels, kernel: 3, down: 2, rng: &rng)
        skip = kind == .resnet ? StyleGANConv2d(tmpChannels, outChannels, kernel: 1, bias: false, leaky: false, down: 2, rng: &rng) : nil
        self.resolution = resolution
        resampleFilter = FIRFilter.binomial.matrix
    }

    func callAsFunction(_ x: Tensor?, image: Tensor) throws -> Tensor {
        let h = try fromRGB.map { try $0(image) } ?? x!
        guard let skip else { return try conv1(try conv0(h)) }
        let half = Float(0.5).squareRoot()
        return try skip(h, gain: half) + conv1(try conv0(h), gain: half)
    }

    public var namedParameters: [(String, Tensor)] {
        (fromRGB.map { scoped("fromrgb", $0.namedParameters) } ?? []) + scoped("conv0", conv0.namedParameters)
            + scoped("conv1", conv1.namedParameters) + (skip.map { scoped("skip", $0.namedParameters) } ?? [])
    }
    public var namedBuffers: [(String, Tensor)] {
        [("resample_filter", resampleFilter)] + (fromRGB.map { scoped("fromrgb", $0.namedBuffers) } ?? [])
            + scoped("conv0", conv0.namedBuffers) + scoped("conv1", conv1.namedBuffers) + (skip.map { scoped("skip", $0.namedBuffers) } ?? [])
    }
}

/// StyleGAN2's discriminator (config F at small scale: residual blocks; or plain ones): a
/// `DiscriminatorBlock` per resolution down to 8x8, then the 4x4 epilogue: minibatch standard
/// deviation (one feature, groups of `groupSize`), a 3x3 convolution, a fully connected layer
/// with LeakyReLU and a linear output, all with equalized learning rate.
///
/// With `classes` > 0 it is class-conditional as stylegan2-ada-pytorch's `Discriminator` with
/// `c_dim` = classes (a projection discriminator): a mapping network of `mappingLayers` layers
/// (learning-rate multiplier 0.01) takes the label's embedding to `cmap` [N, C4] (C4 the channels
/// at 4x4), the output layer gives C4 features instead of one, and the score is their inner
/// product with `cmap`, divided by sqrt(C4). The labels are those of the running forward pass
/// (`ClassLabels.with`).
///
/// State names follow stylegan2-ada-pytorch's `Discriminator`: `b<res>.*`, `b4.conv.*`,
/// `b4.fc.*`, `b4.out.*`, and `mapping.embed.*`, `mapping.fc<i>.*` when conditional.
public final class StyleGAN2Discriminator: Layer {
    public let architecture: StyleGAN2Architecture
    public let blocks: [DiscriminatorBlock]
    public let epilogueConv: StyleGANConv2d
    public let fc: StyleGANFullyConnected
    public let out: StyleGANFullyConnected
    public let groupSize: Int
    /// The label's mapping to `cmap` (conditional only).
    public let mapping: MappingNetwork?

    public init(architecture a: StyleGAN2Architecture, blocks kind: StyleGAN2DiscriminatorBlocks = .resnet, groupSize: Int = 4,
                classes: Int = 0, mappingLayers: Int = 8, rng: inout PhiloxRandom) {
        architecture = a
        var blocks: [DiscriminatorBlock] = []
        for res in a.resolutions.reversed() where res > 4 {
            blocks.append(DiscriminatorBlock(inChannels: res == a.resolution ? 0 : a.channels(res), tmpChannels: a.channels(res),
                                             outChannels: a.channels(res / 2), resolution: res, imageChannels: a.imageChannels,
                                             kind: kind, rng: &rng))
        }
        self.blocks = blocks
        let c = a.channels(4)
        // As stylegan2-ada-pytorch, the mapping is made after the blocks and before the epilogue.
        mapping = classes > 0 ? MappingNetwork(zDim: 0, wDim: c, layers: mappingLayers, lrMultiplier: 0.01, wAverageBeta: nil,
                                               classes: classes, rng: &rng) : nil
        epilogueConv = StyleGANConv2d(c + (groupSize > 1 ? 1 : 0), c, kernel: 3, rng: &rng)
        fc = StyleGANFullyConnected(c * 16, c, leaky: true, rng: &rng)
        out = StyleGANFullyConnected(c, classes > 0 ? c : 1, rng: &rng)
        self.groupSize = groupSize
    }

    /// One score per image: [N, 1].
    public func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor {
        guard convolutionResultsChannelsLast else { return try forwardLayers(x) }
        return try ActivationLayout.storingConvolutionResultsChannelsLast { try forwardLayers(x) }
    }

    /// Whether the bf16 convolutions store their results channels last
    /// (`ActivationLayout.storingConvolutionResultsChannelsLast`), read so by the FIR filter,
    /// bias and activation, and the residual sums. No effect in fp32.
    public var convolutionResultsChannelsLast = true

    private func forwardLayers(_ x: Tensor) throws -> Tensor {
        var h: Tensor?
        for block in blocks { h = try block(h, image: x) }
        var y = h ?? x
        if groupSize > 1 { y = try y.minibatchStddev(groupSize: groupSize) }
        y = try epilogueConv(y)
        y = try out(try fc(try y.reshaped([y.shape[0], -1])))
        guard let mapping else { return y }
        let cmap = try mapping.map(nil, batch: x.shape[0])
        return try (y * cmap).sum(axes: [1], keepDims: true) * (1 / Float(mapping.wDim).squareRoot())
    }

    public var namedParameters: [(String, Tensor)] {
        blocks.flatMap { scoped("b\($0.resolution)", $0.namedParameters) }
            + scoped("b4.conv", epilogueConv.namedParameters) + scoped("b4.fc", fc.namedParameters) + scoped("b4.out", out.namedParameters)
            + (mapping.map { scoped("mapping", $0.namedParameters) } ?? [])
    }

    public var namedBuffers: [(String, Tensor)] {
        blocks.flatMap { scoped("b\($0.resolution)", $0.namedBuffers) } + scoped("b4.conv", epilogueConv.namedBuffers)
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        let a = architecture
        guard input.count == 4, input[1] == a.imageChannels, input[2] == a.resolution, input[3] == a.resolution else {
            throw TensorError("StyleGAN2 discriminator: images \(describe(input)) must be [N, \(a.imageChannels), \(a.resolution), \(a.resolution)]")
        }
        let group = min(groupSize, input[0])
        if groupSize > 1, input[0] % group != 0 {
            throw TensorError("StyleGAN2 discriminator: batch size \(input[0]) is not a multiple of the minibatch-stddev group size \(group)")
        }
        return [input[0], 1]
    }
}
