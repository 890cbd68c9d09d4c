import NeuralNet
import PipelineGraph
import TensorRuntime

/// Reads the architecture keys shared by the DCGAN generator and discriminator: a `preset`, or
/// `resolution`, `width` and `depth`.
struct DCGANShape {
    var preset: DCGAN.Preset?
    var resolution: Int
    var width: Int
    var depth: Int?
    var norm: Normalization

    static let presetKey = ConfigKey("preset", .string(choices: DCGAN.Preset.allCases.map(\.rawValue)), default: .null,
                                     "A published architecture: notebook28 (the tutorial's 28x28 DCGAN) or classic64 (pytorch/examples, 64x64).")
    static let depthKey = ConfigKey("depth", .int(min: 1, max: 10), default: .null,
                                    "Stride-2 layers (null: halve the resolution while it stays even and at least 4).")
    static let normKey = ConfigKey("norm", .string(choices: Normalization.allCases.map(\.rawValue)), default: .string("batch"),
                                   "batch (batch norm between layers), spectral (spectral norm on every weight) or none.")

    /// `resolution` is the configured one (generator) or the input's (discriminator, nil).
    init(_ config: StageConfig, resolution inputResolution: Int?) throws {
        norm = Normalization(rawValue: config.string("norm"))!
        preset = config.optionalString("preset").flatMap(DCGAN.Preset.init(rawValue:))
        depth = config.optionalInt("depth")
        let configured = inputResolution == nil ? config.optionalInt("resolution") : nil
        if let preset {
            if let depth { throw StageProblem(key: "depth", "preset '\(preset.rawValue)' fixes the layers; remove 'depth' (found \(depth))") }
            if let w = config.optionalInt("width"), w != preset.width {
                throw StageProblem(key: "width", "preset '\(preset.rawValue)' has width \(preset.width), not \(w)")
            }
            if let r = configured, r != preset.resolution {
                throw StageProblem(key: "resolution", "preset '\(preset.rawValue)' makes \(preset.resolution)x\(preset.resolution) images, not \(r)")
            }
            resolution = inputResolution ?? preset.resolution
            width = preset.width
        } else {
            resolution = inputResolution ?? configured ?? 32
            width = config.optionalInt("width") ?? 64
        }
    }
}

/// The DCGAN generator: latent [N, dim] or [N, dim, 1, 1] to images [N, channels, res, res].
///
///     "G": { "type": "generator.dcgan", "input": "z.samples", "resolution": 32, "channels": 1 }
///
/// Parameters are named as in the equivalent PyTorch `nn.Sequential` (`0.weight`, `1.weight`,
/// `1.running_mean`, ..., with spectral norm `0.weight_orig`, `0.weight_u`, `0.weight_v`).
public final class DCGANGeneratorStage: GeneratorStage, NetworkBacked, @unchecked Sendable {
    public static let typeName = "generator.dcgan"
    public static let summary = "DCGAN generator (transposed convolutions, batch norm, ReLU, tanh); output 'images'."
    public static let configKeys: [ConfigKey] = ModelKeys.wiring(single: "images") + [
        DCGANShape.presetKey,
        ConfigKey("resolution", .int(min: 4, max: 1024), default: .null, "Output size (null: 32, or the preset's); divisible by 2^depth."),
        ConfigKey("channels", .int(min: 1, max: 4), default: .number(1), "Output channels (1 gray, 3 RGB)."),
        ConfigKey("width", .int(min: 1, max: 1024), default: .null, "Feature maps of the last block (ngf, null: 64); doubles per block towards the input."),
        DCGANShape.depthKey,
        DCGANShape.normKey,
    ] + ModelKeys.generator + ModelKeys.conditioning(generator: true)

    public let core: NetworkCore
    public let outputs: [String: PortType]
    public let latentShape: [Int]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        try ModelKeys.checkWiring(config)
        let ports = NetworkCore.ports(config, single: "images")
        let first = try ModelKeys.latentShape(inputs, key: ports[0].input)
        latentShape = first
        let shape = try DCGANShape(config, resolution: nil)
        let channels = config.int("channels")
        let labels = try ModelKeys.labelWiring(config, inputs, ports: ports, context: context, generator: true)
        try ModelKeys.checkConditioning(labels, norm: shape.norm)
        func make(_ rng: inout PhiloxRandom) throws -> LatentAdapter {
            do {
                let c = labels?.conditioning
                let g = try shape.preset.map { try $0.generator(latent: first[1], channels: channels, norm: shape.norm, conditioning: c, rng: &rng) }
                    ?? DCGAN.generator(latent: first[1], channels: channels, resolution: shape.resolution, width: shape.width,
                                       depth: shape.depth, norm: shape.norm, conditioning: c, rng: &rng)
                return LatentAdapter(g, rank: 4)
            } catch let e as TensorError {
                throw StageProblem(key: shape.depth != nil ? "depth" : "resolution", e.message)
            }
        }
        let (net, ema) = try ModelKeys.network(config, context, make)
        core = NetworkCore(net: net, ports: ports, ema: ema, labels: labels, context: context)
        outputs = try core.outputTypes(inputs)
    }

}

extension DCGANGeneratorStage: ParameterUpdateListener {
    func parametersDidUpdate() throws { try core.ema?.update() }
}

/// Lets a generator take latents as [N, dim] or [N, dim, 1, 1] whatever its first layer wants,
/// keeping the wrapped network's `state_dict` names unchanged.
final class LatentAdapter: Layer {
    let net: Sequential
    /// The rank the network takes: 4 for convolutional generators, 2 for MLPs.
    let rank: Int
    init(_ net: Sequential, rank: Int) {
        self.net = net
        self.rank = rank
    }

    func adapt(_ shape: [Int]) -> [Int] {
        if rank == 4 && shape.count == 2 { return shape + [1, 1] }
        if rank == 2 && shape.count == 4 && shape[2] == 1 && shape[3] == 1 { return [shape[0], shape[1]] }
        return shape
    }

    func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor {
        let s = adapt(x.shape)
        return try net.forward(s == x.shape ? x : x.reshaped(s), mode: mode)
    }
    var namedParameters: [(String, Tensor)] { net.namedParameters }
    var namedBuffers: [(String, Tensor)] { net.namedBuffers }
    var namedCounters: [(String, Int)] { net.namedCounters }
    func setCounter(_ name: String, _ value: Int) { net.setCounter(name, value) }
    func outputShape(for input: [Int]) throws -> [Int] { try net.outputShape(for: adapt(input)) }
}

/// The DCGAN discriminator: images to one logit per image, applied to each input with shared weights.
///
///     "D": { "type": "discriminator.dcgan", "inputs": { "real": "data.images", "fake": "G.images" } }
public final class DCGANDiscriminatorStage: NetworkBacked, CriticStage, @unchecked Sendable {
    public static let typeName = "discriminator.dcgan"
    public static let summary = "DCGAN discriminator (strided convolutions, batch norm, LeakyReLU 0.2); one logit per image for each input."
    public static let configKeys: [ConfigKey] = ModelKeys.wiring(single: "logits") + [
        DCGANShape.presetKey,
        ConfigKey("width", .int(min: 1, max: 1024), default: .null, "Feature maps of the first block (ndf, null: 64); doubles per block."),
        DCGANShape.depthKey,
        DCGANShape.normKey,
    ] + ModelKeys.discriminator + ModelKeys.conditioning(generator: false)

    public let core: NetworkCore
    public let outputs: [String: PortType]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        try ModelKeys.checkWiring(config)
        let ports = NetworkCore.ports(config, single: "logits")
        guard let first = inputs[ports[0].input]?.shape, first.count == 4, first[2] == first[3] else {
            throw StageProblem(key: ports[0].input, "expected square images [N, C, H, W], found \(inputs[ports[0].input]!)")
        }
        let shape = try DCGANShape(config, resolution: first[2])
        let labels = try ModelKeys.labelWiring(config, inputs, ports: ports, context: context, generator: false)
        var rng = ModelKeys.initRandom(config, context)
        let net: Sequential
        do {
            let c = labels?.conditioning
            if let preset = shape.preset {
                guard first[2] == preset.resolution else {
                    throw StageProblem(key: ports[0].input, "preset '\(preset.rawValue)' takes \(preset.resolution)x\(preset.resolution) images, found \(inputs[ports[0].input]!)")
                }
                net = try preset.discriminator(channels: first[1], norm: shape.norm, conditioning: c, rng: &rng)
            } else {
                net = try DCGAN.discriminator(channels: first[1], resolution: first[2], width: shape.width, depth: shape.depth,
                                              norm: shape.norm, conditioning: c, rng: &rng)
            }
        } catch let e as TensorError {
            throw StageProblem(key: ports[0].input, e.message)
        }
        core = NetworkCore(net: net, ports: ports, instanceNoise: ModelKeys.instanceNoise(config), sameShapes: true, labels: labels,
                           context: context)
        outputs = try core.outputTypes(inputs)
    }

    public var hasMovingAverage: Bool { false }
}
