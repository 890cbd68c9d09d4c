import NeuralNet
import PipelineGraph
import TensorRuntime

/// Keys of the ProGAN model stages: the feature maps per resolution and the fade-in wires.
enum ProGANKeys {
    static let architecture: [ConfigKey] = [
        ConfigKey("fmapBase", .int(min: 1), default: .number(8192), "Feature maps: nf(stage) = min(fmapBase / 2^(stage * fmapDecay), fmapMax), stage 1 at 4x4."),
        ConfigKey("fmapDecay", .number(min: 0), default: .number(1), "How fast feature maps shrink per doubling of resolution."),
        ConfigKey("fmapMax", .int(min: 1), default: .number(512), "Most feature maps of any layer."),
    ]
    static let growing: [ConfigKey] = [
        ConfigKey("resolution", .wire, default: .null, "The current resolution, an integer (schedule.progressive's 'resolution'); null: always the largest."),
        ConfigKey("alpha", .wire, default: .null, "The fade-in of the current resolution, a scalar in [0, 1] (the schedule's 'alpha'); null: 1."),
    ]

    static func architecture(_ config: StageConfig, target: Int, channels: Int, key: String) throws -> ProGANArchitecture {
        do {
            return try ProGANArchitecture(target: target, channels: channels, fmapBase: config.int("fmapBase"),
                                          fmapDecay: config.double("fmapDecay"), fmapMax: config.int("fmapMax"))
        } catch let e as TensorError {
            throw StageProblem(key: key, e.message)
        }
    }

    static func checkGrowingInputs(_ inputs: [String: PortType]) throws {
        if let t = inputs["resolution"], t != .integer { throw StageProblem(key: "resolution", "expected an integer, found \(t)") }
        if let t = inputs["alpha"], t != .scalar { throw StageProblem(key: "alpha", "expected a scalar, found \(t)") }
    }

    /// The alpha wired to an evaluation, clamped to [0, 1]; 1 when not wired.
    static func alpha(_ e: Evaluation) -> Float {
        guard let a = e.inputs["alpha"]?.tensor?.item() else { return 1 }
        return min(max(a, 0), 1)
    }
}

/// ProGAN's generator (Karras et al., 2018): latent [N, dim] (or [N, dim, 1, 1]) to images at the
/// current resolution, faded in from the one below by `alpha`.
///
///     "G": { "type": "generator.progan", "input": "z.samples", "target": 32, "channels": 1,
///            "resolution": "grow.resolution", "alpha": "grow.alpha", "ema": 0.999 }
///
/// Equalized learning rate, pixel norm, nearest upsampling, a toRGB at every resolution (see
/// `ProGANGenerator`). Validation infers the output at every resolution the schedule visits.
/// The resolution and alpha of the last training step are checkpointed, so `ganflow sample`
/// draws at the resolution training had reached.
public final class ProGANGeneratorStage: GeneratorStage, NetworkBacked, @unchecked Sendable {
    public static let typeName = "generator.progan"
    public static let summary = "ProGAN generator (equalized LR, pixel norm, progressive fade-in); output 'images' at the current resolution."
    public static let configKeys: [ConfigKey] = [
        ConfigKey("input", .wire, "Latent vectors [N, dim] or [N, dim, 1, 1]."),
        ConfigKey("target", .int(min: 4, max: 1024), "The largest resolution (a power of two)."),
        ConfigKey("channels", .int(min: 1, max: 4), default: .number(1), "Output channels (1 gray, 3 RGB)."),
        ConfigKey("normalizeLatent", .bool, default: .bool(true), "Pixel-normalise the latent first, as the official code."),
    ] + ProGANKeys.growing + ProGANKeys.architecture + ModelKeys.generator

    public let core: NetworkCore
    public let outputs: [String: PortType]
    public let latentShape: [Int]
    let architecture: ProGANArchitecture
    /// Resolution and alpha of the last training evaluation.
    var current: (resolution: Int, alpha: Float)

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        try ProGANKeys.checkGrowingInputs(inputs)
        let z = try ModelKeys.latentShape(inputs, key: "input")
        latentShape = z
        architecture = try ProGANKeys.architecture(config, target: config.int("target"), channels: config.int("channels"), key: "target")
        let a = architecture, normalize = config.bool("normalizeLatent")
        let (net, ema) = try ModelKeys.network(config, context) { ProGANGenerator(latent: z[1], architecture: a, normalizeLatent: normalize, rng: &$0) }
        core = NetworkCore(net: net, ports: [("input", "images")], ema: ema, context: context)
        current = (a.target, 1)
        outputs = try Self.types(net, inputs, resolution: a.target)
    }

    static func types(_ net: ProGANGenerator, _ inputs: [String: PortType], resolution: Int) throws -> [String: PortType] {
        guard let z = inputs["input"]?.shape else { throw StageProblem(key: "input", "expected latent vectors, found \(inputs["input"].map { "\($0)" } ?? "nothing")") }
        do {
            return ["images": .tensor(try net.outputShape(for: [z[0], z.dropFirst().reduce(1, *)], resolution: resolution))]
        } catch let e as TensorError {
            throw StageProblem(key: resolution == net.architecture.target ? "input" : "resolution", e.message)
        }
    }

    var generator: ProGANGenerator { core.net as! ProGANGenerator }

    public func outputTypes(for inputs: [String: PortType]) throws -> [String: PortType] {
        try Self.types(generator, inputs, resolution: architecture.target)
    }

    public func outputTypes(for inputs: [String: PortType], integers: [String: Int]) throws -> [String: PortType] {
        try Self.types(generator, inputs, resolution: integers["resolution"] ?? architecture.target)
    }

    public func inputsNeeded(for output: String) -> [String]? { nil }

    static func flat(_ z: Tensor) throws -> Tensor { z.rank == 4 ? try z.reshaped([z.shape[0], z.shape[1]]) : z }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let resolution = e.integer("resolution") ?? architecture.target
        let alpha = ProGANKeys.alpha(e)
        let model = (e.mode == .sample ? core.ema?.average as? ProGANGenerator : nil) ?? generator
        if e.mode == .train { current = (resolution, alpha) }
        let images = try model.forward(try Self.flat(try e.tensor("input")), resolution: resolution, alpha: alpha,
                                       mode: e.mode == .train ? .train : .sample)
        return ["images": .tensor(images)]
    }

    public func sampleForward(_ latent: Tensor, movingAverage: Bool) throws -> Tensor {
        let model = (movingAverage ? core.ema?.average as? ProGANGenerator : nil) ?? generator
        return try model.forward(try Self.flat(latent), resolution: current.resolution, alpha: current.alpha, mode: .sample)
    }

    public func checkpointState() throws -> StageState {
        var s = core.checkpointState()
        s.values["resolution"] = String(current.resolution)
        s.values["alpha"] = String(current.alpha)
        return s
    }

    public func restore(_ state: StageState) throws {
        try core.restore(state)
        if let r = state.values["resolution"].flatMap(Int.init), let a = state.values["alpha"].flatMap(Float.init) {
            _ = try architecture.levelProblem(r)
            current = (r, a)
        }
    }
}

extension ProGANGeneratorStage: ParameterUpdateListener {
    func parametersDidUpdate() throws { try core.ema?.update() }
}

extension ProGANArchitecture {
    /// `level(resolution)` with a `StageProblem` instead of a `TensorError`.
    func levelProblem(_ resolution: Int) throws -> Int {
        do { return try level(resolution) } catch let e as TensorError { throw StageProblem(key: "resolution", e.message) }
    }
}

/// ProGAN's discriminator: images at the current resolution to one score per image, the mirror of
/// `generator.progan` (fromRGB at every resolution, average pooling, minibatch stddev in the 4x4
/// block), applied to each input with shared weights.
///
///     "D": { "type": "discriminator.progan", "inputs": { "real": "fade.images", "fake": "G.images" },
///            "resolution": "grow.resolution", "alpha": "grow.alpha" }
///
/// Its largest resolution is the side of its inputs when the pipeline is built (the schedule's
/// target). As a critic for gradient penalties it uses the alpha of its last training evaluation.
public final class ProGANDiscriminatorStage: NetworkBacked, CriticStage, @unchecked Sendable {
    public static let typeName = "discriminator.progan"
    public static let summary = "ProGAN discriminator (equalized LR, minibatch stddev, progressive fade-in); one score per image for each input."
    public static let configKeys: [ConfigKey] = ModelKeys.wiring(single: "scores") + [
        ConfigKey("groupSize", .int(min: 1), default: .number(4), "Minibatch stddev group size (1: no minibatch stddev layer)."),
    ] + ProGANKeys.growing + ProGANKeys.architecture

    public let core: NetworkCore
    public let outputs: [String: PortType]
    let architecture: ProGANArchitecture
    var lastAlpha: Float = 1

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        try ModelKeys.checkWiring(config)
        try ProGANKeys.checkGrowingInputs(inputs)
        let ports = NetworkCore.ports(config, single: "scores")
        if let clash = ports.first(where: { ["resolution", "alpha"].contains($0.input) }) {
            throw StageProblem(key: clash.input, "'\(clash.input)' names the fade-in wire; give this input another name")
        }
        guard let first = inputs[ports[0].input]?.shape, first.count == 4, first[2] == first[3] else {
            throw StageProblem(key: ports[0].input, "expected square images [N, C, H, H], found \(inputs[ports[0].input]!)")
        }
        architecture = try ProGANKeys.architecture(config, target: first[2], channels: first[1], key: ports[0].input)
        var rng = ModelKeys.initRandom(config, context)
        let net = ProGANDiscriminator(architecture: architecture, groupSize: config.int("groupSize"), rng: &rng)
        core = NetworkCore(net: net, ports: ports, sameShapes: true, context: context)
        outputs = try core.outputTypes(inputs)
    }

    var discriminator: ProGANDiscriminator { core.net as! ProGANDiscriminator }

    public func outputTypes(for inputs: [String: PortType], integers: [String: Int]) throws -> [String: PortType] {
        let out = try core.outputTypes(inputs)
        if let r = integers["resolution"] {
            for (input, _) in core.ports {
                if let s = inputs[input]?.shape, s[2] != r {
                    throw StageProblem(key: input, "input '\(input)' is \(inputs[input]!) but the resolution is \(r)")
                }
            }
        }
        return out
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let alpha = ProGANKeys.alpha(e)
        if e.mode == .train { lastAlpha = alpha }
        var out: [String: PortValue] = [:]
        for (input, output) in core.ports where e.outputs.contains(output) {
            let x = try e.tensor(input)
            if let r = e.integer("resolution"), x.shape[2] != r {
                throw StageProblem(key: input, "input '\(input)' is \(describe(x.shape)) but the resolution is \(r)")
            }
            out[output] = .tensor(try discriminator.forward(x, alpha: alpha, mode: e.mode == .train ? .train : .sample))
        }
        return out
    }

    public func critic(_ images: Tensor) throws -> Tensor {
        try discriminator.forward(images, alpha: lastAlpha, mode: .sample)
    }

    public func checkpointState() throws -> StageState {
        var s = core.checkpointState()
        s.values["alpha"] = String(lastAlpha)
        return s
    }

    public func restore(_ state: StageState) throws {
        try core.restore(state)
        lastAlpha = state.values["alpha"].flatMap(Float.init) ?? 1
    }

    public var hasMovingAverage: Bool { false }
}
