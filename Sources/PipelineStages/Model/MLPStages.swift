import NeuralNet
import PipelineGraph
import TensorRuntime

/// The tutorial notebook's fully connected generator: latent [N, dim] to images [N, channels, size, size].
///
///     "G": { "type": "generator.mlp", "input": "z.samples" }
///
/// The defaults are the notebook's: 100 -> 256 -> 512 -> 1024 -> 784, each hidden layer
/// BatchNorm1d(momentum 0.2) and LeakyReLU(0.2), tanh output. Names as PyTorch's
/// `nn.Sequential(Linear, BatchNorm1d, LeakyReLU, ..., Linear, Tanh, Unflatten)`: `0.weight`,
/// `1.running_mean`, ..., `9.weight`.
public final class MLPGeneratorStage: GeneratorStage, NetworkBacked, @unchecked Sendable {
    public static let typeName = "generator.mlp"
    public static let summary = "Fully connected generator (the tutorial's MLP GAN by default); output 'images'."
    public static let configKeys: [ConfigKey] = ModelKeys.wiring(single: "images") + [
        ConfigKey("hidden", .intList(), default: .array([256, 512, 1024].map { .number($0) }), "Widths of the hidden layers."),
        ConfigKey("size", .int(min: 1, max: 1024), default: .number(28), "Output height and width."),
        ConfigKey("channels", .int(min: 1, max: 4), default: .number(1), "Output channels."),
        ConfigKey("norm", .string(choices: ["batch", "none"]), default: .string("batch"), "Batch norm after each hidden layer, or none."),
        ConfigKey("momentum", .number(min: 0, max: 1), default: .number(0.2), "Batch norm momentum (PyTorch's convention: weight of the new batch)."),
        ConfigKey("slope", .number(min: 0), default: .number(0.2), "Negative slope of the LeakyReLUs."),
    ] + ModelKeys.generator + ModelKeys.conditioning(generator: true)

    public let core: NetworkCore
    public let outputs: [String: PortType]
    public let latentShape: [Int]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        try ModelKeys.checkWiring(config)
        let ports = NetworkCore.ports(config, single: "images")
        let first = try ModelKeys.latentShape(inputs, key: ports[0].input)
        let hidden = config.ints("hidden")
        guard !hidden.isEmpty, hidden.allSatisfy({ $0 >= 1 }) else {
            throw StageProblem(key: "hidden", "expected at least one positive width, found \(hidden)")
        }
        latentShape = first
        let labels = try ModelKeys.labelWiring(config, inputs, ports: ports, context: context, generator: true)
        try ModelKeys.checkConditioning(labels, norm: config.string("norm") == "batch" ? .batch : .none)
        func make(_ rng: inout PhiloxRandom) throws -> LatentAdapter {
            LatentAdapter(try MLPGAN.generator(latent: first[1], hidden: hidden, channels: config.int("channels"), size: config.int("size"),
                                               batchNormMomentum: config.string("norm") == "batch" ? config.float("momentum") : nil,
                                               slope: config.float("slope"), conditioning: labels?.conditioning, rng: &rng), rank: 2)
        }
        let (net, ema) = try ModelKeys.network(config, context, make)
        core = NetworkCore(net: net, ports: ports, ema: ema, labels: labels, context: context)
        outputs = try core.outputTypes(inputs)
    }

}

extension MLPGeneratorStage: ParameterUpdateListener {
    func parametersDidUpdate() throws { try core.ema?.update() }
}

/// The tutorial notebook's fully connected discriminator: images [N, C, H, W] to one logit each.
///
///     "D": { "type": "discriminator.mlp", "inputs": { "real": "data.images", "fake": "G.images" } }
///
/// Defaults: flatten -> 512 -> 256 -> 1 with LeakyReLU(0.2), as PyTorch's
/// `nn.Sequential(Flatten, Linear, LeakyReLU, Linear, LeakyReLU, Linear, Flatten(0))` (`1.weight`,
/// `3.weight`, `5.weight`); the sigmoid is part of the loss (BCE on logits).
public final class MLPDiscriminatorStage: NetworkBacked, CriticStage, @unchecked Sendable {
    public static let typeName = "discriminator.mlp"
    public static let summary = "Fully connected discriminator (the tutorial's MLP GAN by default); one logit per image for each input."
    public static let configKeys: [ConfigKey] = ModelKeys.wiring(single: "logits") + [
        ConfigKey("hidden", .intList(), default: .array([512, 256].map { .number($0) }), "Widths of the hidden layers."),
        ConfigKey("norm", .string(choices: ["none", "spectral"]), default: .string("none"), "Spectral norm on every weight, or none."),
        ConfigKey("slope", .number(min: 0), default: .number(0.2), "Negative slope of the LeakyReLUs."),
    ] + ModelKeys.discriminator + ModelKeys.conditioning(generator: false)

    public let core: NetworkCore
    public let outputs: [String: PortType]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        try ModelKeys.checkWiring(config)
        let ports = NetworkCore.ports(config, single: "logits")
        guard let first = inputs[ports[0].input]?.shape, first.count == 4, first[2] == first[3] else {
            throw StageProblem(key: ports[0].input, "expected square images [N, C, H, W], found \(inputs[ports[0].input]!)")
        }
        let hidden = config.ints("hidden")
        guard !hidden.isEmpty, hidden.allSatisfy({ $0 >= 1 }) else {
            throw StageProblem(key: "hidden", "expected at least one positive width, found \(hidden)")
        }
        let labels = try ModelKeys.labelWiring(config, inputs, ports: ports, context: context, generator: false)
        var rng = ModelKeys.initRandom(config, context)
        let net = try MLPGAN.discriminator(hidden: hidden, channels: first[1], size: first[2], slope: config.float("slope"),
                                           spectralNorm: config.string("norm") == "spectral", conditioning: labels?.conditioning, rng: &rng)
        core = NetworkCore(net: net, ports: ports, instanceNoise: ModelKeys.instanceNoise(config), sameShapes: true, labels: labels,
                           context: context)
        outputs = try core.outputTypes(inputs)
    }

    public var hasMovingAverage: Bool { false }
}
