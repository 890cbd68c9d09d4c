import NeuralNet
import PipelineGraph
import TensorRuntime

/// Keys shared by model stages: one `input` wire or a map of `inputs` (one output per name).
enum ModelKeys {
    static func wiring(single: String) -> [ConfigKey] {
        [
            ConfigKey("input", .wire, default: .null, "The input, producing output '\(single)'."),
            ConfigKey("inputs", .wireMap, default: .null, "Several inputs through the same weights; one output per name."),
        ]
    }

    /// Generator keys: the moving average of the weights.
    static let generator: [ConfigKey] = [
        ConfigKey("ema", .number(min: 0, max: 0.999999), default: .null,
                  "Keep a moving average of the weights with this decay (e.g. 0.999), updated after each optimizer step and used for samples."),
        ConfigKey("emaRampUp", .number(min: 0), default: .null,
                  "Ramp the moving average up (StyleGAN2: 0.05): its half-life in steps is at most this times the steps taken (null: no ramp-up)."),
    ]

    /// Discriminator keys: instance noise.
    static let discriminator: [ConfigKey] = [
        ConfigKey("instanceNoise", .number(min: 0), default: .number(0), "Std of Gaussian noise added to every input while training (0: none)."),
        ConfigKey("instanceNoiseSteps", .int(min: 1), default: .null, "Steps over which that std falls linearly to 0 (null: constant)."),
    ]

    static func checkWiring(_ config: StageConfig) throws {
        if config.isNull("input") == config.isNull("inputs") {
            throw StageProblem(key: config.isNull("input") ? nil : "inputs", "give either 'input' or 'inputs'")
        }
    }

    /// A generator's latent input shape, [N, dim] or [N, dim, 1, 1], or an error naming the wire `key`.
    static func latentShape(_ inputs: [String: PortType], key: String) throws -> [Int] {
        guard let z = inputs[key]?.shape, z.count == 2 || (z.count == 4 && z[2] == 1 && z[3] == 1) else {
            throw StageProblem(key: key, "expected latent vectors [N, dim] or [N, dim, 1, 1], found \(inputs[key].map { "\($0)" } ?? "nothing")")
        }
        return z
    }

    /// A network built by `make` from the stage's initial-weight stream, and, when `ema` is set,
    /// its moving average (a second network of the same shape that starts as a copy of it).
    static func network<L: Layer>(
        _ config: StageConfig, _ context: BuildContext, _ make: (inout PhiloxRandom) throws -> L
    ) throws -> (net: L, ema: ExponentialMovingAverage?) {
        var rng = initRandom(config, context)
        let net = try make(&rng)
        return (net, try ema(config, net) { var r = rng; return try make(&r) })
    }

    /// The seed stream for a model's initial weights: the pipeline seed and the stage id.
    static func initRandom(_ config: StageConfig, _ context: BuildContext) -> PhiloxRandom {
        PhiloxRandom(seed: context.seed, stream: stableHash("init/" + config.stageID))
    }

    static func instanceNoise(_ config: StageConfig) -> InstanceNoise? {
        config.double("instanceNoise") > 0 ? InstanceNoise(std: config.float("instanceNoise"), steps: config.optionalInt("instanceNoiseSteps")) : nil
    }

    /// The moving average of `net`, built as a second copy by `make`, when `ema` is set.
    static func ema(_ config: StageConfig, _ net: any Layer, _ make: () throws -> any Layer) throws -> ExponentialMovingAverage? {
        guard let decay = config.optionalDouble("ema") else {
            if !config.isNull("emaRampUp") { throw StageProblem(key: "emaRampUp", "a ramp-up needs a moving average: set 'ema'") }
            return nil
        }
        do {
            let average = try ExponentialMovingAverage(of: net, into: try make(), decay: decay)
            average.rampUp = config.optionalDouble("emaRampUp")
            return average
        } catch let e as OptimizerError {
            throw StageProblem(key: "ema", e.message)
        }
    }
}
