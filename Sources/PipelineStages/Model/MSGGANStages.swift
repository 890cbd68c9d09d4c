import NeuralNet
import PipelineGraph
import TensorRuntime

/// MSG-GAN's generator (Karnewar and Wang, CVPR 2020): ProGAN's generator without growing, every
/// block emitting its image through a 1x1 toRGB.
///
///     "G": { "type": "generator.msg", "input": "z.samples", "target": 32, "channels": 1, "ema": 0.999 }
///
/// Outputs `pyramid` (4x4 first, `target` last) and `images` (the finest scale, for sinks and
/// `ganflow sample`). Parameters are those of `generator.progan` at the same sizes.
public final class MSGGeneratorStage: GeneratorStage, NetworkBacked, @unchecked Sendable {
    public static let typeName = "generator.msg"
    public static let summary = "MSG-GAN generator (ProGAN blocks, an image from every block); outputs 'pyramid' and 'images' (the finest)."
    public static let configKeys: [ConfigKey] = [
        ConfigKey("input", .wire, "Latent vectors [N, dim] or [N, dim, 1, 1]."),
        ConfigKey("target", .int(min: 4, max: 1024), "The finest scale (a power of two)."),
        ConfigKey("channels", .int(min: 1, max: 4), default: .number(1), "Output channels (1 gray, 3 RGB)."),
        ConfigKey("normalizeLatent", .bool, default: .bool(true), "Pixel-normalise the latent first."),
    ] + ProGANKeys.architecture + ModelKeys.generator

    public let core: NetworkCore
    public let outputs: [String: PortType]
    public let latentShape: [Int]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let z = try ModelKeys.latentShape(inputs, key: "input")
        latentShape = z
        let a = try ProGANKeys.architecture(config, target: config.int("target"), channels: config.int("channels"), key: "target")
        let normalize = config.bool("normalizeLatent")
        let (net, ema) = try ModelKeys.network(config, context) { ProGANGenerator(latent: z[1], architecture: a, normalizeLatent: normalize, rng: &$0) }
        core = NetworkCore(net: net, ports: [("input", "images")], ema: ema, context: context)
        outputs = try Self.types(net, inputs)
    }

    static func types(_ net: ProGANGenerator, _ inputs: [String: PortType]) throws -> [String: PortType] {
        guard let z = inputs["input"]?.shape else { throw StageProblem(key: "input", "expected latent vectors, found nothing") }
        do {
            let shapes = try net.pyramidShapes(for: [z[0], z.dropFirst().reduce(1, *)])
            return ["pyramid": .pyramid(shapes), "images": .tensor(shapes.last!)]
        } catch let e as TensorError {
            throw StageProblem(key: "input", e.message)
        }
    }

    var generator: ProGANGenerator { core.net as! ProGANGenerator }

    public func outputTypes(for inputs: [String: PortType]) throws -> [String: PortType] { try Self.types(generator, inputs) }
    public func inputsNeeded(for output: String) -> [String]? { ["input"] }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let model = (e.mode == .sample ? core.ema?.average as? ProGANGenerator : nil) ?? generator
        let levels = try model.pyramid(try ProGANGeneratorStage.flat(try e.tensor("input")), mode: e.mode == .train ? .train : .sample)
        return ["pyramid": .pyramid(levels), "images": .tensor(levels.last!)]
    }
}

extension MSGGeneratorStage: ParameterUpdateListener {
    func parametersDidUpdate() throws { try core.ema?.update() }
}

/// MSG-GAN's discriminator: takes a pyramid (4x4 first) and joins each scale's image to its main
/// path with `combine`; one score per image for each input, with shared weights.
///
///     "D": { "type": "discriminator.msg", "inputs": { "real": "data.pyramid", "fake": "G.pyramid" }, "combine": "simple" }
///
/// Every input must have the same scales, and they must be 4x4, 8x8, ... up to the finest;
/// validation names the first scale that differs. As a critic for penalties it takes pyramids.
public final class MSGDiscriminatorStage: NetworkBacked, PyramidCriticStage, @unchecked Sendable {
    public static let typeName = "discriminator.msg"
    public static let summary = "MSG-GAN discriminator: a pyramid in, each scale joined to its block (simple, lin_cat or cat_lin), minibatch stddev last."
    public static let configKeys: [ConfigKey] = ModelKeys.wiring(single: "scores") + [
        ConfigKey("combine", .string(choices: MSGCombine.allCases.map(\.rawValue)), default: .string("simple"),
                  "How a scale's image joins the main path: simple (concatenate), lin_cat (1x1 conv of the image, concatenate) or cat_lin (concatenate, 1x1 conv)."),
        ConfigKey("groupSize", .int(min: 1), default: .number(4), "Minibatch stddev group size (1: no minibatch stddev layer)."),
    ] + ProGANKeys.architecture

    public let core: NetworkCore
    public let outputs: [String: PortType]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        try ModelKeys.checkWiring(config)
        let ports = NetworkCore.ports(config, single: "scores")
        guard case .pyramid(let first)? = inputs[ports[0].input], let finest = first.last, finest.count == 4 else {
            throw StageProblem(key: ports[0].input, "expected a pyramid of images (a generator.msg's or dataset's 'pyramid'), found \(inputs[ports[0].input]!)")
        }
        let a = try ProGANKeys.architecture(config, target: finest[2], channels: finest[1], key: ports[0].input)
        var rng = ModelKeys.initRandom(config, context)
        let net = MSGDiscriminator(architecture: a, combine: MSGCombine(rawValue: config.string("combine"))!,
                                   groupSize: config.int("groupSize"), rng: &rng)
        core = NetworkCore(net: net, ports: ports, sameShapes: true, context: context)
        outputs = try Self.types(net, ports, inputs)
    }

    var discriminator: MSGDiscriminator { core.net as! MSGDiscriminator }

    /// Every input a pyramid with the first one's scales, and those the network's.
    static func types(_ net: MSGDiscriminator, _ ports: [(input: String, output: String)], _ inputs: [String: PortType]) throws -> [String: PortType] {
        var out: [String: PortType] = [:]
        let (firstName, _) = ports[0]
        guard case .pyramid(let first)? = inputs[firstName] else {
            throw StageProblem(key: firstName, "expected a pyramid of images, found \(inputs[firstName].map { "\($0)" } ?? "nothing")")
        }
        var all: [(input: String, output: String, scales: [[Int]])] = []
        for (input, output) in ports {
            guard case .pyramid(let scales)? = inputs[input] else {
                throw StageProblem(key: input, "expected a pyramid of images, found \(inputs[input].map { "\($0)" } ?? "nothing")")
            }
            for i in 0..<max(scales.count, first.count) {
                let mine = i < scales.count ? describe(scales[i]) : "missing"
                let theirs = i < first.count ? describe(first[i]) : "missing"
                if mine != theirs {
                    throw StageProblem(key: input, "scale \(i) of '\(input)' is \(mine) but scale \(i) of '\(firstName)' is \(theirs); every input needs the same scales")
                }
            }
            all.append((input, output, scales))
        }
        for (input, output, scales) in all {
            do {
                out[output] = .tensor(try net.checkedShapes(scales))
            } catch let e as TensorError {
                throw StageProblem(key: input, e.message)
            }
        }
        return out
    }

    public func outputTypes(for inputs: [String: PortType]) throws -> [String: PortType] {
        try Self.types(discriminator, core.ports, inputs)
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        var out: [String: PortValue] = [:]
        for (input, output) in core.ports where e.outputs.contains(output) {
            out[output] = .tensor(try discriminator.forward(pyramid: try e.pyramid(input), mode: e.mode == .train ? .train : .sample))
        }
        return out
    }

    public func critic(pyramid: [Tensor]) throws -> Tensor { try discriminator.forward(pyramid: pyramid, mode: .sample) }

    public var hasMovingAverage: Bool { false }
}
