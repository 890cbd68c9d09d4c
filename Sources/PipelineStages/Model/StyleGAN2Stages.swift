import NeuralNet
import PipelineGraph
import TensorRuntime

/// Keys of the StyleGAN2 model stages: channels per resolution,
/// `max(channelMin, min(channelBase / res, channelMax))`.
enum StyleGAN2Keys {
    static let architecture: [ConfigKey] = [
        ConfigKey("channelBase", .int(min: 1), default: .number(32768), "Channels at resolution r: min(channelBase / r, channelMax) (stylegan2-ada-pytorch's channel_base)."),
        ConfigKey("channelMax", .int(min: 1), default: .number(512), "Most channels of any layer."),
        ConfigKey("channelMin", .int(min: 1), default: .number(1), "Fewest channels of any layer: more than channelBase / resolution widens the finest resolutions only (1 keeps stylegan2-ada-pytorch's widths, which its modules need to load an export)."),
    ]

    static func architecture(_ config: StageConfig, resolution: Int, channels: Int, key: String) throws -> StyleGAN2Architecture {
        guard config.int("channelMin") <= config.int("channelMax") else {
            throw StageProblem(key: "channelMin", "\(config.int("channelMin")) is more than channelMax (\(config.int("channelMax")))")
        }
        do {
            return try StyleGAN2Architecture(resolution: resolution, imageChannels: channels,
                                             channelBase: config.int("channelBase"), channelMax: config.int("channelMax"),
                                             channelMin: config.int("channelMin"))
        } catch let e as TensorError {
            throw StageProblem(key: key, e.message)
        }
    }
}

/// StyleGAN2's generator (Karras et al., 2020, config F at small scale): latent [N, dim] (or
/// [N, dim, 1, 1]) through the mapping network to `w`, then the synthesis network from a learned
/// 4x4 constant with modulated, demodulated 3x3 convolutions, per-pixel noise, FIR upsampling and
/// a toRGB at every resolution (skip architecture); output 'images' [N, channels, res, res].
///
///     "G": { "type": "generator.stylegan2", "input": "z.samples", "resolution": 32, "channels": 1,
///            "wDim": 128, "mappingLayers": 4, "channelBase": 2048, "channelMax": 128,
///            "mixing": 0.9, "ema": 0.999, "emaRampUp": 0.05 }
///
/// While training: random noise, style mixing with probability `mixing`, and the mean `w`
/// tracked for truncation. Samples (grids, metrics, `ganflow sample`) use each layer's constant
/// noise and the moving average when kept; `ganflow sample --truncation psi` moves `w` towards
/// its mean. Weights are named as stylegan2-ada-pytorch's `Generator` `state_dict`.
///
/// Class-conditional with `"conditioning": "concat", "classes": K, "labels": "y.labels"`, as
/// stylegan2-ada-pytorch's `Generator` with `c_dim` K.
public final class StyleGAN2GeneratorStage: TruncatingGeneratorStage, NetworkBacked, @unchecked Sendable {
    public static let typeName = "generator.stylegan2"
    public static let summary = "StyleGAN2 generator (mapping network, modulated convolutions, noise, skip toRGBs, style mixing; optionally class-conditional); output 'images'."
    public static let configKeys: [ConfigKey] = [
        ConfigKey("input", .wire, "Latent vectors z [N, dim] or [N, dim, 1, 1]."),
        ConfigKey("resolution", .int(min: 4, max: 1024), "Output size, a power of two."),
        ConfigKey("channels", .int(min: 1, max: 4), default: .number(1), "Output channels (1 gray, 3 RGB)."),
        ConfigKey("wDim", .int(min: 1), default: .number(512), "Dimension of the intermediate latent w."),
        ConfigKey("mappingLayers", .int(min: 1, max: 16), default: .number(8), "Fully connected layers of the mapping network."),
        ConfigKey("lrMultiplier", .number(min: 0.0001, max: 1), default: .number(0.01), "Learning-rate multiplier of the mapping network."),
        ConfigKey("mixing", .number(min: 0, max: 1), default: .number(0.9), "Style-mixing probability while training (0: off)."),
        ConfigKey("wAverageBeta", .number(min: 0, max: 0.999999), default: .number(0.995), "Decay of the tracked mean w used for truncation."),
    ] + StyleGAN2Keys.architecture + ModelKeys.generator
        + ModelKeys.conditioning(generator: true, only: [.concat],
                                 doc: "Class conditioning: none, or concat (stylegan2-ada-pytorch's: the class's embedding, normalised, joined to the normalised z before the mapping network).")

    public let core: NetworkCore
    public let outputs: [String: PortType]
    public let latentShape: [Int]
    let mixing: Float

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let z = try ModelKeys.latentShape(inputs, key: "input")
        latentShape = z
        let a = try StyleGAN2Keys.architecture(config, resolution: config.int("resolution"), channels: config.int("channels"), key: "resolution")
        let wDim = config.int("wDim"), layers = config.int("mappingLayers"), lr = config.float("lrMultiplier")
        let beta = config.float("wAverageBeta")
        let labels = try ModelKeys.labelWiring(config, inputs, ports: [("input", "images")], context: context, generator: true)
        let classes = labels?.conditioning.classes ?? 0
        let (net, ema) = try ModelKeys.network(config, context) { rng in
            StyleGAN2Generator(zDim: z[1], wDim: wDim, mappingLayers: layers, lrMultiplier: lr, wAverageBeta: beta, classes: classes,
                               architecture: a, rng: &rng)
        }
        core = NetworkCore(net: net, ports: [("input", "images")], ema: ema, labels: labels, context: context)
        mixing = config.float("mixing")
        outputs = ["images": .tensor([z[0], a.imageChannels, a.resolution, a.resolution])]
    }

    var generator: StyleGAN2Generator { core.net as! StyleGAN2Generator }
    var average: StyleGAN2Generator? { core.ema?.average as? StyleGAN2Generator }

    public func outputTypes(for inputs: [String: PortType]) throws -> [String: PortType] {
        let z = try ModelKeys.latentShape(inputs, key: "input")
        let a = generator.architecture
        return ["images": .tensor([z[0], a.imageChannels, a.resolution, a.resolution])]
    }

    public func inputsNeeded(for output: String) -> [String]? { nil }

    static func flat(_ z: Tensor) throws -> Tensor { z.rank == 4 ? try z.reshaped([z.shape[0], z.shape[1]]) : z }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let z = try Self.flat(try e.tensor("input"))
        return try core.withLabels(of: "input", e) {
            if e.mode == .train {
                var rng = e.random("noise")
                return ["images": .tensor(try generator.forward(z, training: true, mixing: mixing, rng: &rng))]
            }
            return ["images": .tensor(try sampleForward(z, movingAverage: true))]
        }
    }

    public func sampleForward(_ latent: Tensor, movingAverage: Bool) throws -> Tensor {
        try sampleForward(latent, movingAverage: movingAverage, truncation: 1)
    }

    public func sampleForward(_ latent: Tensor, movingAverage: Bool, truncation: Float) throws -> Tensor {
        let model = (movingAverage ? average : nil) ?? generator
        var rng = PhiloxRandom(seed: 0)
        return try model.forward(try Self.flat(latent), training: false, psi: truncation, rng: &rng)
    }

    /// A training forward pass that also returns the `w`s [N, numWs, wDim] the images were made
    /// from, recorded so that the images can be differentiated with respect to them (path-length
    /// regularization).
    func imagesAndWs(_ z: Tensor, rng: inout PhiloxRandom) throws -> (images: Tensor, ws: Tensor) {
        let g = generator
        // Not detached: as in stylegan2-ada-pytorch's Gpl phase, the penalty's gradient reaches the
        // mapping network through ws as well as the synthesis weights.
        let ws = try g.ws(z, training: true, mixing: mixing, rng: &rng)
        return (try g.synthesize(ws, noise: .random, rng: &rng), ws)
    }
}

extension StyleGAN2GeneratorStage: ParameterUpdateListener {
    func parametersDidUpdate() throws { try core.ema?.update() }
}

/// StyleGAN2's discriminator: residual blocks (skips scaled by sqrt(1/2); `"architecture":
/// "orig"` for plain ones, as stylegan2-ada-pytorch's CIFAR-10 configuration), FIR downsampling,
/// minibatch standard deviation, equalized learning rate; one score per image for each input,
/// with shared weights. Its resolution and channels are those of its inputs.
///
///     "D": { "type": "discriminator.stylegan2", "inputs": { "real": "aug.real", "fake": "aug.fake" },
///            "channelBase": 2048, "channelMax": 128 }
///
/// Weights are named as stylegan2-ada-pytorch's `Discriminator` `state_dict`. Class-conditional
/// with `"conditioning": "projection", "classes": K, "labels": { "real": ..., "fake": ... }`, as
/// that repository's `Discriminator` with `c_dim` K.
public final class StyleGAN2DiscriminatorStage: NetworkBacked, CriticStage, @unchecked Sendable {
    public static let typeName = "discriminator.stylegan2"
    public static let summary = "StyleGAN2 discriminator (residual or plain blocks, FIR downsampling, minibatch stddev, equalized LR; optionally a class projection); one score per image for each input."
    public static let configKeys: [ConfigKey] = ModelKeys.wiring(single: "scores") + [
        ConfigKey("groupSize", .int(min: 1), default: .number(4), "Minibatch stddev group size (1: no minibatch stddev layer)."),
        ConfigKey("architecture", .string(choices: StyleGAN2DiscriminatorBlocks.allCases.map(\.rawValue)), default: .string("resnet"),
                  "Blocks with a 1x1 downsampling skip (resnet, config F) or without (orig, stylegan2-ada-pytorch's CIFAR-10 choice)."),
        ConfigKey("mappingLayers", .int(min: 1, max: 16), default: .number(8), "Layers of the class label's mapping network (conditioning projection)."),
    ] + StyleGAN2Keys.architecture + ModelKeys.discriminator
        + ModelKeys.conditioning(generator: false, only: [.projection],
                                 doc: "Class conditioning: none, or projection (stylegan2-ada-pytorch's: a mapping network takes the class to cmap, and the score is the inner product of the last features with it).")

    public let core: NetworkCore
    public let outputs: [String: PortType]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        try ModelKeys.checkWiring(config)
        let ports = NetworkCore.ports(config, single: "scores")
        guard let first = inputs[ports[0].input]?.shape, first.count == 4, first[2] == first[3] else {
            throw StageProblem(key: ports[0].input, "expected square images [N, C, H, H], found \(inputs[ports[0].input].map { "\($0)" } ?? "nothing")")
        }
        let a = try StyleGAN2Keys.architecture(config, resolution: first[2], channels: first[1], key: ports[0].input)
        let labels = try ModelKeys.labelWiring(config, inputs, ports: ports, context: context, generator: false)
        var rng = ModelKeys.initRandom(config, context)
        let net = StyleGAN2Discriminator(architecture: a, blocks: StyleGAN2DiscriminatorBlocks(rawValue: config.string("architecture"))!,
                                         groupSize: config.int("groupSize"), classes: labels?.conditioning.classes ?? 0,
                                         mappingLayers: config.int("mappingLayers"), rng: &rng)
        core = NetworkCore(net: net, ports: ports, instanceNoise: ModelKeys.instanceNoise(config), sameShapes: true, labels: labels,
                           context: context)
        outputs = try core.outputTypes(inputs)
    }

    public var hasMovingAverage: Bool { false }
}

extension StyleGAN2GeneratorStage: NoisyGeneratorStage {
    public func sampleForward(_ latent: Tensor, movingAverage: Bool, truncation psi: Float, noise rng: inout PhiloxRandom) throws -> Tensor {
        let model = (movingAverage ? average : nil) ?? generator
        return try model.forward(try Self.flat(latent), training: false, psi: psi, noise: .random, rng: &rng)
    }
}

extension StyleGAN2GeneratorStage: WSpaceGeneratorStage {
    public var wDimension: Int { generator.mapping.wDim }

    public func mapping(_ z: Tensor, movingAverage: Bool) throws -> Tensor {
        let model = (movingAverage ? average : nil) ?? generator
        return try withoutGradients { try model.mapping(try Self.flat(z)) }
    }

    public func synthesis(_ w: Tensor, movingAverage: Bool, truncation psi: Float) throws -> Tensor {
        let model = (movingAverage ? average : nil) ?? generator
        guard w.rank == 2, w.shape[1] == model.mapping.wDim else {
            throw StageProblem("w latents \(describe(w.shape)) must be [N, \(model.mapping.wDim)]")
        }
        let n = w.shape[0]
        let ws = try model.mapping.truncated(w, psi: psi).reshaped([n, 1, model.mapping.wDim]).expanded(to: [n, model.numWs, model.mapping.wDim])
        var rng = PhiloxRandom(seed: 0)
        return try model.synthesize(ws, noise: .constant, rng: &rng)
    }
}

extension StyleGAN2GeneratorStage: StyleMixingGeneratorStage {
    public var styleInputs: Int { generator.numWs }

    public func mixedImages(coarse: Tensor, fine: Tensor, crossover: Int, movingAverage: Bool, truncation psi: Float) throws -> Tensor {
        let model = (movingAverage ? average : nil) ?? generator
        var rng = PhiloxRandom(seed: 0)
        return try withoutGradients {
            let a = try model.ws(try Self.flat(coarse), psi: psi, rng: &rng)
            let b = try model.ws(try Self.flat(fine), psi: psi, rng: &rng)
            let k = min(max(crossover, 0), model.numWs)
            let ws = try Tensor.concat([try a.sliced(axis: 1, 0..<k), try b.sliced(axis: 1, k..<model.numWs)].filter { $0.shape[1] > 0 }, axis: 1)
            return try model.synthesize(ws, noise: .constant, rng: &rng)
        }
    }
}
