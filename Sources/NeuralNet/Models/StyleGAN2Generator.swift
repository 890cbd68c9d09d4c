import TensorRuntime

/// The shape of a StyleGAN2 network: channels per resolution `min(channelBase / res, channelMax)`,
/// as stylegan2-ada-pytorch's `channels_dict`, and at least `channelMin` (GANFlow's own: 1, the
/// default, gives that repository's widths; more widens only the finest resolutions).
public struct StyleGAN2Architecture: Sendable, Equatable {
    public let resolution: Int
    public let imageChannels: Int
    public let channelBase: Int
    public let channelMax: Int
    public let channelMin: Int

    public init(resolution: Int, imageChannels: Int, channelBase: Int, channelMax: Int, channelMin: Int = 1) throws {
        guard resolution >= 4, resolution & (resolution - 1) == 0 else {
            throw TensorError("StyleGAN2: resolution \(resolution) is not a power of two of at least 4")
        }
        guard channelBase >= 1, channelMax >= 1, imageChannels >= 1 else {
            throw TensorError("StyleGAN2: channelBase, channelMax and the image channels must be positive")
        }
        guard channelMin >= 1, channelMin <= channelMax else {
            throw TensorError("StyleGAN2: channelMin \(channelMin) must be between 1 and channelMax (\(channelMax))")
        }
        self.resolution = resolution
        self.imageChannels = imageChannels
        self.channelBase = channelBase
        self.channelMax = channelMax
        self.channelMin = channelMin
    }

    /// 4, 8, ..., resolution.
    public var resolutions: [Int] { Array(sequence(first: 4) { $0 < resolution ? $0 * 2 : nil }) }

    public func channels(_ res: Int) -> Int { max(channelMin, min(channelBase / res, channelMax)) }
}

/// StyleGAN2's mapping network (stylegan2-ada-pytorch's `MappingNetwork`): the latent
/// normalised to unit second moment and, for `classes` > 0, joined to the class label's
/// embedding (a fully connected layer from the one-hot class to `wDim` features, normalised the
/// same way), then `layers` fully connected layers with LeakyReLU and learning-rate multiplier
/// `lrMultiplier` (0.01), to `w` [N, wDim]. With `wAverageBeta`, training keeps the moving
/// average of `w` (decay 0.995) that truncation pulls towards. A conditional discriminator maps
/// its label with one of these and no latent (`zDim` 0, no average).
///
/// The class labels are those of the running forward pass (`ClassLabels.with`).
///
/// State names: `embed.weight|bias` (conditional), `fc<i>.weight|bias`, buffer `w_avg` [wDim]
/// (when the average is kept).
public final class MappingNetwork {
    public let embed: StyleGANFullyConnected?
    public let layers: [StyleGANFullyConnected]
    public let wAverage: Tensor?
    public let wAverageBeta: Float
    public let zDim: Int, wDim: Int, classes: Int

    public init(zDim: Int, wDim: Int, layers count: Int, lrMultiplier: Float, wAverageBeta: Float? = 0.995, classes: Int = 0,
                rng: inout PhiloxRandom) {
        embed = classes > 0 ? StyleGANFullyConnected(classes, wDim, rng: &rng) : nil
        var layers: [StyleGANFullyConnected] = []
        for i in 0..<count {
            layers.append(StyleGANFullyConnected(i == 0 ? zDim + (classes > 0 ? wDim : 0) : wDim, wDim, leaky: true,
                                                 lrMultiplier: lrMultiplier, rng: &rng))
        }
        self.layers = layers
        wAverage = wAverageBeta.map { _ in Tensor(zeros: [wDim]) }
        self.wAverageBeta = wAverageBeta ?? 0
        self.zDim = zDim
        self.wDim = wDim
        self.classes = classes
    }

    /// `w` for latents `z` [N, zDim] (and the running pass's class labels); with `trackAverage`,
    /// moves `w_avg` towards the batch mean.
    public func callAsFunction(_ z: Tensor, trackAverage: Bool = false) throws -> Tensor {
        try map(z, batch: z.shape[0], trackAverage: trackAverage)
    }

    /// `w` [batch, wDim] for latents `z` (nil when `zDim` is 0) and the running pass's labels.
    public func map(_ z: Tensor?, batch: Int, trackAverage: Bool = false) throws -> Tensor {
        var inputs: [Tensor] = []
        if let z { inputs.append(try z.pixelNorm()) }
        if let embed {
            let oneHot = try ClassLabels.oneHot(classes: classes, batch: batch, layer: "StyleGAN2 mapping network (\(classes) classes)")
            inputs.append(try embed(oneHot).pixelNorm())
        }
        var x = inputs.count == 1 ? inputs[0] : try Tensor.concat(inputs, axis: 1)
        for layer in layers { x = try layer(x) }
        if trackAverage, let wAverage {
            let mean = try withoutGradients { try x.detached().mean(axes: [0]) }.scalars
            let p = wAverage.data, beta = wAverageBeta
            for i in 0..<wDim { p[i] = mean[i] + (p[i] - mean[i]) * beta }
        }
        return x
    }

    /// `w_avg + psi (w - w_avg)`: truncation towards the mean `w` (psi 1: none).
    public func truncated(_ w: Tensor, psi: Float) throws -> Tensor {
        guard psi != 1 else { return w }
        guard let wAverage else { throw TensorError("StyleGAN2 mapping network: no mean w is kept, so it cannot truncate") }
        let avg = wAverage.reshaped1(w)
        return try avg + (w - avg) * psi
    }

    public var namedParameters: [(String, Tensor)] {
        (embed.map { scoped("embed", $0.namedParameters) } ?? []) + layers.enumerated().flatMap { i, l in scoped("fc\(i)", l.namedParameters) }
    }
    public var namedBuffers: [(String, Tensor)] { wAverage.map { [("w_avg", $0)] } ?? [] }
}

private extension Tensor {
    /// This [D] tensor as [1, D], to broadcast against `w` [N, D].
    func reshaped1(_ w: Tensor) -> Tensor { try! reshaped([1, count]) }
}

/// One resolution of the synthesis network, "skip" architecture (stylegan2-ada-pytorch's
/// `SynthesisBlock`): the learned 4x4 constant (first block) or an upsampling modulated
/// convolution, a second modulated convolution, and a toRGB whose image is added to the
/// upsampled image of the block below.
///
/// State names: `const` [C, 4, 4] (first block), `conv0.*` (others), `conv1.*`, `torgb.*`, buffer
/// `resample_filter`.
public final class SynthesisBlock {
    public let constant: Tensor?
    public let conv0: SynthesisLayer?
    public let conv1: SynthesisLayer
    public let toRGB: ToRGBLayer
    public let resolution: Int
    let resampleFilter: Tensor

    public init(inChannels: Int, outChannels: Int, wDim: Int, resolution: Int, imageChannels: Int, rng: inout PhiloxRandom) {
        if inChannels == 0 {
            constant = parameter(Initializers.normal([outChannels, resolution, resolution], using: &rng))
            conv0 = nil
        } else {
            constant = nil
            conv0 = SynthesisLayer(inChannels, outChannels, wDim: wDim, resolution: resolution, up: 2, rng: &rng)
        }
        conv1 = SynthesisLayer(outChannels, outChannels, wDim: wDim, resolution: resolution, rng: &rng)
        toRGB = ToRGBLayer(outChannels, imageChannels, wDim: wDim, rng: &rng)
        self.resolution = resolution
        resampleFilter = FIRFilter.binomial.matrix
    }

    /// Convolutions in this block (each takes one `w`); its toRGB takes the next.
    public var convolutions: Int { conv0 == nil ? 1 : 2 }

    /// Features and image after this block, from those of the block below (nil for the first)
    /// and the block's `w`s ([N, wDim] each: one per convolution, then the toRGB's).
    func callAsFunction(_ x: Tensor?, _ image: Tensor?, _ ws: [Tensor], noise: NoiseMode, rng: inout PhiloxRandom) throws -> (Tensor, Tensor) {
        var h: Tensor
        if let constant {
            let c = constant.shape
            h = try constant.reshaped([1] + c).expanded(to: [ws[0].shape[0]] + c)
            h = try conv1(h, ws[0], noise: noise, rng: &rng)
        } else {
            h = try conv0!(x!, ws[0], noise: noise, rng: &rng)
            h = try conv1(h, ws[1], noise: noise, rng: &rng)
        }
        let rgb = try toRGB(h, ws[convolutions])
        return (h, try image.map { try $0.upsample2d() + rgb } ?? rgb)
    }

    public var namedParameters: [(String, Tensor)] {
        (constant.map { [("const", $0)] } ?? []) + (conv0.map { scoped("conv0", $0.namedParameters) } ?? [])
            + scoped("conv1", conv1.namedParameters) + scoped("torgb", toRGB.namedParameters)
    }
    public var namedBuffers: [(String, Tensor)] {
        [("resample_filter", resampleFilter)] + (conv0.map { scoped("conv0", $0.namedBuffers) } ?? [])
            + scoped("conv1", conv1.namedBuffers)
    }
}

/// StyleGAN2's generator (config F at small scale): mapping network, then a synthesis network of
/// `SynthesisBlock`s from 4x4 to the resolution, skip architecture, equalized learning rate.
///
/// While training, style mixing with probability `mixingProbability` draws a second latent and
/// uses its `w` from a random layer on (one cut-off per batch, as stylegan2-ada-pytorch), and the
/// mapping network tracks the mean `w`. Sampling uses each layer's constant noise (or fresh noise
/// when asked, as stylegan2-ada-pytorch's metrics draw it) and may truncate `w` towards its mean.
///
/// With `classes` > 0 it is class-conditional as stylegan2-ada-pytorch's `Generator` with
/// `c_dim` = classes: the mapping network joins the label's embedding to the latent.
///
/// State names follow stylegan2-ada-pytorch's `Generator`: `mapping.embed.*` (conditional),
/// `mapping.fc<i>.*`, `mapping.w_avg`, `synthesis.b<res>.*`.
public final class StyleGAN2Generator: Layer {
    public let architecture: StyleGAN2Architecture
    public let mapping: MappingNetwork
    public let blocks: [SynthesisBlock]
    /// Number of `w` inputs of the synthesis network: one per convolution, plus the last toRGB.
    public let numWs: Int

    public init(zDim: Int, wDim: Int, mappingLayers: Int, lrMultiplier: Float, wAverageBeta: Float = 0.995, classes: Int = 0,
                architecture a: StyleGAN2Architecture, rng: inout PhiloxRandom) {
        architecture = a
        var blocks: [SynthesisBlock] = []
        for res in a.resolutions {
            blocks.append(SynthesisBlock(inChannels: res == 4 ? 0 : a.channels(res / 2), outChannels: a.channels(res), wDim: wDim,
                                         resolution: res, imageChannels: a.imageChannels, rng: &rng))
        }
        self.blocks = blocks
        numWs = blocks.reduce(0) { $0 + $1.convolutions } + 1
        mapping = MappingNetwork(zDim: zDim, wDim: wDim, layers: mappingLayers, lrMultiplier: lrMultiplier, wAverageBeta: wAverageBeta,
                                 classes: classes, rng: &rng)
    }

    /// `w` for every synthesis input: [N, numWs, wDim], the mapping of `z` [N, zDim] broadcast,
    /// truncated by `psi`; while `training`, the mean `w` is tracked and, with probability
    /// `mixing`, the layers from a random cut-off on take the `w` of a second latent.
    public func ws(_ z: Tensor, training: Bool = false, mixing: Float = 0, psi: Float = 1, rng: inout PhiloxRandom) throws -> Tensor {
        let n = z.shape[0], d = mapping.wDim
        let w = try mapping.truncated(try mapping(z, trackAverage: training), psi: psi)
        let all = try w.reshaped([n, 1, d]).expanded(to: [n, numWs, d])
        guard training, mixing > 0, numWs > 1 else { return all }
        let cutoff = 1 + Int(rng.next() % UInt32(numWs - 1))
        guard rng.nextUniform() < mixing else { return all }
        let second = try mapping(Tensor(randomNormal: z.shape, using: &rng))
        return try Tensor.concat([
            try all.sliced(axis: 1, 0..<cutoff),
            try second.reshaped([n, 1, d]).expanded(to: [n, numWs - cutoff, d]),
        ], axis: 1)
    }

    /// Images [N, C, res, res] for `ws` [N, numWs, wDim].
    public func synthesize(_ ws: Tensor, noise: NoiseMode, rng: inout PhiloxRandom) throws -> Tensor {
        guard convolutionResultsChannelsLast else { return try synthesizeLayers(ws, noise: noise, rng: &rng) }
        return try ActivationLayout.storingConvolutionResultsChannelsLast { try synthesizeLayers(ws, noise: noise, rng: &rng) }
    }

    /// Whether the synthesis network's bf16 convolutions store their results channels last
    /// (`ActivationLayout.storingConvolutionResultsChannelsLast`), read so by the modulation,
    /// demodulation, noise, bias and activation and the FIR filter. No effect in fp32.
    public var convolutionResultsChannelsLast = true

    private func synthesizeLayers(_ ws: Tensor, noise: NoiseMode, rng: inout PhiloxRandom) throws -> Tensor {
        guard ws.rank == 3, ws.shape[1] == numWs, ws.shape[2] == mapping.wDim else {
            throw TensorError("StyleGAN2 synthesis: ws \(describe(ws.shape)) must be [N, \(numWs), \(mapping.wDim)]")
        }
        let n = ws.shape[0], d = mapping.wDim
        let each = try (0..<numWs).map { try ws.sliced(axis: 1, $0..<($0 + 1)).reshaped([n, d]) }
        var x: Tensor?, image: Tensor?
        var index = 0
        for block in blocks {
            (x, image) = try block(x, image, Array(each[index...(index + block.convolutions)]), noise: noise, rng: &rng)
            index += block.convolutions
        }
        return image!
    }

    /// Images for latents `z` [N, zDim]: random noise, mixing and mean tracking while `training`;
    /// truncation `psi` and constant noise otherwise, unless `noise` says which.
    public func forward(_ z: Tensor, training: Bool, mixing: Float = 0, psi: Float = 1, noise: NoiseMode? = nil,
                        rng: inout PhiloxRandom) throws -> Tensor {
        let ws = try self.ws(z, training: training, mixing: mixing, psi: training ? 1 : psi, rng: &rng)
        return try synthesize(ws, noise: noise ?? (training ? .random : .constant), rng: &rng)
    }

    /// The noise of `forward(_:mode:)` in `.train` mode (stages pass their own streams instead).
    var layerRandom = PhiloxRandom(seed: 0, stream: 0x5747)

    /// As a `Layer`: in `.train` mode a training pass (random noise, mean w tracked, no mixing);
    /// otherwise sampling (constant noise, no mixing, no truncation).
    public func forward(_ z: Tensor, mode: ForwardMode) throws -> Tensor {
        if mode == .train { return try forward(z, training: true, rng: &layerRandom) }
        var rng = PhiloxRandom(seed: 0)
        return try forward(z, training: false, rng: &rng)
    }

    public var namedParameters: [(String, Tensor)] {
        blocks.flatMap { scoped("synthesis.b\($0.resolution)", $0.namedParameters) } + scoped("mapping", mapping.namedParameters)
    }

    public var namedBuffers: [(String, Tensor)] {
        blocks.flatMap { scoped("synthesis.b\($0.resolution)", $0.namedBuffers) } + scoped("mapping", mapping.namedBuffers)
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 2, input[1] == mapping.zDim else {
            throw TensorError("StyleGAN2 generator: latents \(describe(input)) must be [N, \(mapping.zDim)]")
        }
        return [input[0], architecture.imageChannels, architecture.resolution, architecture.resolution]
    }
}
