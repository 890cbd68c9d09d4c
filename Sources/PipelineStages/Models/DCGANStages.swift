import NeuralNet
import PipelineGraph
import TensorRuntime

/// The DCGAN generator: latent [N, dim] or [N, dim, 1, 1] to images [N, channels, res, res].
///
///     "G": { "type": "generator.dcgan", "input": "z.samples", "resolution": 32, "channels": 1 }
public final class DCGANGeneratorStage: Stage, @unchecked Sendable {
    public static let typeName = "generator.dcgan"
    public static let summary = "DCGAN generator (transposed convolutions, batch norm, ReLU, tanh); output 'images'."
    public static let configKeys: [ConfigKey] = ModelKeys.wiring(single: "images") + [
        ConfigKey("resolution", .int(min: 8, max: 1024), default: .number(32), "Output size, a power of two."),
        ConfigKey("channels", .int(min: 1, max: 4), default: .number(1), "Output channels (1 gray, 3 RGB)."),
        ConfigKey("width", .int(min: 1, max: 1024), default: .number(64), "Feature maps of the last block (ngf); doubles per block towards the input."),
        ConfigKey("norm", .string(choices: ["batch", "none"]), default: .string("batch"), "Normalisation after each transposed convolution but the last."),
    ]

    let core: NetworkCore
    public let outputs: [String: PortType]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        try ModelKeys.checkWiring(config)
        let ports = NetworkCore.ports(config, single: "images")
        guard let first = inputs[ports[0].input]?.shape, first.count == 2 || (first.count == 4 && first[2] == 1 && first[3] == 1) else {
            throw StageProblem(key: ports[0].input, "expected latent vectors [N, dim] or [N, dim, 1, 1], found \(inputs[ports[0].input]!)")
        }
        var rng = ModelKeys.initRandom(config, context)
        let g: Sequential
        do {
            g = try DCGAN.generator(latent: first[1], channels: config.int("channels"), resolution: config.int("resolution"),
                                    width: config.int("width"), batchNorm: config.string("norm") == "batch", rng: &rng)
        } catch let e as TensorError {
            throw StageProblem(key: "resolution", e.message)
        }
        core = NetworkCore(net: LatentAdapter(g), ports: ports)
        outputs = try core.outputTypes(inputs)
    }

    public func outputTypes(for inputs: [String: PortType]) throws -> [String: PortType] { try core.outputTypes(inputs) }
    public func inputsNeeded(for output: String) -> [String]? { core.inputsNeeded(for: output) }
    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] { try core.evaluate(e) }
    public var parameters: [(String, Tensor)] { core.parameters }
    public func checkpointState() throws -> StageState { core.checkpointState() }
    public func restore(_ state: StageState) throws { try core.restore(state) }
}

/// Lets a convolutional generator take [N, dim] latents as well as [N, dim, 1, 1], keeping the
/// wrapped network's `state_dict` names unchanged.
final class LatentAdapter: Layer {
    let net: Sequential
    init(_ net: Sequential) { self.net = net }

    func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor {
        try net.forward(x.rank == 2 ? x.reshaped([x.shape[0], x.shape[1], 1, 1]) : x, mode: mode)
    }
    var namedParameters: [(String, Tensor)] { net.namedParameters }
    var namedBuffers: [(String, Tensor)] { net.namedBuffers }
    var namedCounters: [(String, Int)] { net.namedCounters }
    func setCounter(_ name: String, _ value: Int) { net.setCounter(name, value) }
    func outputShape(for input: [Int]) throws -> [Int] {
        try net.outputShape(for: input.count == 2 ? input + [1, 1] : input)
    }
}

/// The DCGAN discriminator: images to one logit per image, applied to each input with shared weights.
///
///     "D": { "type": "discriminator.dcgan", "inputs": { "real": "data.images", "fake": "G.images" } }
public final class DCGANDiscriminatorStage: Stage, @unchecked Sendable {
    public static let typeName = "discriminator.dcgan"
    public static let summary = "DCGAN discriminator (strided convolutions, batch norm, LeakyReLU 0.2); one logit per image for each input."
    public static let configKeys: [ConfigKey] = ModelKeys.wiring(single: "logits") + [
        ConfigKey("width", .int(min: 1, max: 1024), default: .number(64), "Feature maps of the first block (ndf); doubles per block."),
        ConfigKey("norm", .string(choices: ["batch", "none"]), default: .string("batch"), "Normalisation after each convolution but the first and last."),
    ]

    let core: NetworkCore
    public let outputs: [String: PortType]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        try ModelKeys.checkWiring(config)
        let ports = NetworkCore.ports(config, single: "logits")
        guard let first = inputs[ports[0].input]?.shape, first.count == 4, first[2] == first[3] else {
            throw StageProblem(key: ports[0].input, "expected square images [N, C, H, W], found \(inputs[ports[0].input]!)")
        }
        var rng = ModelKeys.initRandom(config, context)
        let net: Sequential
        do {
            net = try DCGAN.discriminator(channels: first[1], resolution: first[2], width: config.int("width"),
                                          batchNorm: config.string("norm") == "batch", rng: &rng)
        } catch let e as TensorError {
            throw StageProblem(key: ports[0].input, e.message)
        }
        core = NetworkCore(net: net, ports: ports)
        outputs = try core.outputTypes(inputs, sameShapes: true)
    }

    public func outputTypes(for inputs: [String: PortType]) throws -> [String: PortType] { try core.outputTypes(inputs, sameShapes: true) }
    public func inputsNeeded(for output: String) -> [String]? { core.inputsNeeded(for: output) }
    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] { try core.evaluate(e) }
    public var parameters: [(String, Tensor)] { core.parameters }
    public func checkpointState() throws -> StageState { core.checkpointState() }
    public func restore(_ state: StageState) throws { try core.restore(state) }
}
