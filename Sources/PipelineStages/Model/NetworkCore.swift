import NeuralNet
import PipelineGraph
import TensorRuntime

/// What every model stage shares: one network applied with shared weights to each of its
/// inputs, its parameters under PyTorch `state_dict` names, and its checkpoint state.
///
/// Generators may keep an exponential moving average of their weights (`ema`), used for sample
/// evaluations; discriminators may add instance noise to their inputs while training.
public final class NetworkCore: @unchecked Sendable {
    let net: any Layer
    /// Input ports in the order they are evaluated (the order of the config), and the output
    /// port each produces.
    let ports: [(input: String, output: String)]
    let ema: ExponentialMovingAverage?
    let instanceNoise: InstanceNoise?
    /// Every input must have the first one's shape (a discriminator sees real and generated
    /// images of one size).
    let sameShapes: Bool

    init(net: any Layer, ports: [(input: String, output: String)], ema: ExponentialMovingAverage? = nil,
         instanceNoise: InstanceNoise? = nil, sameShapes: Bool = false) {
        self.net = net
        self.sameShapes = sameShapes
        self.ports = ports
        self.ema = ema
        self.instanceNoise = instanceNoise
    }

    /// Wiring of a model stage: a single `input` wire gives output `single`; an `inputs` map gives
    /// one output per name.
    static func ports(_ config: StageConfig, single: String) -> [(input: String, output: String)] {
        if let entries = config.raw("inputs").objectEntries {
            return entries.map { ($0.0, $0.0) }
        }
        return [("input", single)]
    }

    /// Output types, each computed from the network's shape rules; a misfit names the port.
    func outputTypes(_ inputs: [String: PortType]) throws -> [String: PortType] {
        var out: [String: PortType] = [:]
        let first = ports[0].input
        for (input, output) in ports {
            guard let t = inputs[input] else { throw StageProblem(key: input, "input '\(input)' is not wired") }
            if sameShapes, input != first, let t0 = inputs[first], t != t0 {
                throw StageProblem(key: input, "input '\(input)' is \(t) but '\(first)' is \(t0); all inputs must have the same shape")
            }
            guard let shape = t.shape else { throw StageProblem(key: input, "expected an image tensor, found \(t)") }
            do {
                out[output] = .tensor(try net.outputShape(for: shape))
            } catch let e as TensorError {
                throw StageProblem(key: input, e.message)
            }
        }
        return out
    }

    func inputsNeeded(for output: String) -> [String]? {
        ports.first { $0.output == output }.map { [$0.input] }
    }

    /// Runs the network on each requested input, in declaration order (so running statistics
    /// update in the same order whatever the scheduler does). Sample evaluations use the moving
    /// average when there is one.
    func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let mode: ForwardMode = e.mode == .train ? .train : .sample
        let model = e.mode == .sample ? (ema?.average ?? net) : net
        var out: [String: PortValue] = [:]
        for (input, output) in ports where e.outputs.contains(output) {
            var x = try e.tensor(input)
            if e.mode == .train, let instanceNoise {
                var rng = e.random("instanceNoise/" + input)
                x = try instanceNoise.apply(x, step: e.step, rng: &rng)
            }
            if let sync = e.batchNormSynchronizer {
                out[output] = .tensor(try BatchNorm.synchronized(over: sync) { try model.forward(x, mode: mode) })
            } else {
                out[output] = .tensor(try model.forward(x, mode: mode))
            }
        }
        return out
    }

    var parameters: [(String, Tensor)] { net.namedParameters }

    /// The network (or its moving average) on `latent`, as a sample evaluation runs it.
    func sampleForward(_ latent: Tensor, movingAverage: Bool) throws -> Tensor {
        try ((movingAverage ? ema?.average : nil) ?? net).forward(latent, mode: .sample)
    }

    func checkpointState() -> StageState {
        var s = StageState()
        for (n, t) in net.namedParameters + net.namedBuffers { s.tensors[n] = t }
        for (n, v) in net.namedCounters { s.values[n] = String(v) }
        if let ema {
            let avg = ema.average
            for (n, t) in avg.namedParameters + avg.namedBuffers { s.tensors[Self.emaPrefix + n] = t }
            for (n, v) in avg.namedCounters { s.values[Self.emaPrefix + n] = String(v) }
            s.values["emaUpdates"] = String(ema.updates)
        }
        return s
    }

    func restore(_ s: StageState) throws {
        try Self.assign(s.tensors, s.values, to: net, prefix: "")
        if let ema {
            try Self.assign(s.tensors, s.values, to: ema.average, prefix: Self.emaPrefix)
            ema.updates = s.values["emaUpdates"].flatMap(Int.init) ?? 0
        }
    }

    /// Sets `layer`'s parameters, buffers and counters from `tensors[prefix + name]`.
    static func assign(_ tensors: [String: Tensor], _ values: [String: String], to layer: any Layer, prefix: String) throws {
        for (n, t) in layer.namedParameters + layer.namedBuffers {
            guard let saved = tensors[prefix + n] else { throw StageProblem("the checkpoint has no tensor '\(prefix + n)'") }
            guard saved.shape == t.shape else {
                throw StageProblem("tensor '\(prefix + n)' has shape \(describe(saved.shape)) in the checkpoint, expected \(describe(t.shape))")
            }
            try t.assign(saved)
        }
        for (n, _) in layer.namedCounters {
            if let v = values[prefix + n].flatMap(Int.init) { layer.setCounter(n, v) }
        }
    }

    // MARK: State dicts

    /// Names of the moving average's tensors in a checkpoint: `ema.` and the PyTorch name.
    static let emaPrefix = "ema."

    /// The network's (or its moving average's) `state_dict`, as safetensors entries that PyTorch's
    /// `load_state_dict` accepts: F32 parameters and buffers, I64 scalar counters.
    func stateDict(ema useEMA: Bool) throws -> SafeTensorsArchive {
        try Self.stateDict(from: checkpointState(), ema: useEMA)
    }

    /// The `state_dict` held in a model stage's checkpoint state: its own tensors, or with `ema`
    /// those of its moving average. Counters (metadata strings in a checkpoint) become I64 scalars.
    static func stateDict(from state: StageState, ema useEMA: Bool) throws -> SafeTensorsArchive {
        let prefix = useEMA ? emaPrefix : ""
        var archive = SafeTensorsArchive(metadata: ["format": "pt"])
        let names = state.tensors.keys.filter { useEMA ? $0.hasPrefix(prefix) : !$0.hasPrefix(emaPrefix) }
        if useEMA && names.isEmpty { throw StageProblem("this stage keeps no moving average (set 'ema' on it)") }
        for name in names.sorted() { archive.set(String(name.dropFirst(prefix.count)), state.tensors[name]!) }
        for (name, value) in state.values.sorted(by: { $0.key < $1.key })
        where name.hasSuffix("num_batches_tracked") && (useEMA ? name.hasPrefix(prefix) : !name.hasPrefix(emaPrefix)) {
            guard let n = Int64(value) else { throw StageProblem("counter '\(name)' is not an integer: '\(value)'") }
            archive.set(String(name.dropFirst(prefix.count)), integer: n)
        }
        return archive
    }

    /// Loads a `state_dict` strictly: every parameter and buffer present with its shape, nothing
    /// else; counters are optional (PyTorch files saved before they existed lack them). The moving
    /// average, if any, starts again from the loaded weights.
    func loadStateDict(_ archive: SafeTensorsArchive) throws {
        let expected = net.namedParameters + net.namedBuffers
        let known = Set(expected.map(\.0) + net.namedCounters.map(\.0))
        let unexpected = archive.names.filter { !known.contains($0) }
        if !unexpected.isEmpty {
            throw StageProblem("unexpected tensors \(unexpected.prefix(5).joined(separator: ", "))"
                + (unexpected.count > 5 ? ", ..." : ""))
        }
        var tensors: [String: Tensor] = [:]
        var values: [String: String] = [:]
        for (name, _) in expected {
            guard archive.entry(name) != nil else { throw StageProblem("missing tensor '\(name)'") }
            tensors[name] = try archive.tensor(name)
        }
        for (name, _) in net.namedCounters where archive.entry(name) != nil {
            guard let n = try archive.integers(name).first else { throw StageProblem("'\(name)' is empty") }
            values[name] = String(n)
        }
        do {
            try Self.assign(tensors, values, to: net, prefix: "")
        } catch let p as StageProblem {
            throw StageProblem(p.message.replacingOccurrences(of: "in the checkpoint", with: "in the file"))
        }
        try ema?.copy()
    }
}

/// Gaussian noise added to a discriminator's inputs while training (Sonderby et al., 2016;
/// Arjovsky and Bottou, 2017), so that real and generated distributions overlap early on.
///
/// The standard deviation falls linearly from `std` at step 1 to 0 at `steps` (nil: constant).
struct InstanceNoise: Sendable {
    var std: Float
    var steps: Int?

    func std(at step: Int) -> Float {
        guard let steps else { return std }
        return std * max(0, 1 - Float(step - 1) / Float(steps))
    }

    func apply(_ x: Tensor, step: Int, rng: inout PhiloxRandom) throws -> Tensor {
        let s = std(at: step)
        guard s > 0 else { return x }
        return try x + Tensor(randomNormal: x.shape, std: s, using: &rng)
    }
}

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
        guard let decay = config.optionalDouble("ema") else { return nil }
        do {
            return try ExponentialMovingAverage(of: net, into: try make(), decay: decay)
        } catch let e as OptimizerError {
            throw StageProblem(key: "ema", e.message)
        }
    }
}

/// A stage holding one network whose weights can be saved and loaded as a PyTorch `state_dict`.
public protocol ModelStage: Stage {
    /// Whether the stage keeps a moving average of its weights.
    var hasMovingAverage: Bool { get }
    /// The weights (or their moving average) under PyTorch `state_dict` names.
    func stateDict(ema: Bool) throws -> SafeTensorsArchive
    /// Loads weights saved by `stateDict` or by PyTorch; throws a `StageProblem` on any mismatch.
    func loadStateDict(_ archive: SafeTensorsArchive) throws
}

/// A model stage that turns latent vectors into images.
public protocol GeneratorStage: ModelStage {
    /// The latent batch the stage was built for, e.g. [64, 100] or [64, 100, 1, 1].
    var latentShape: [Int] { get }
    /// Images for `latent` as a sample evaluation makes them (batch statistics, no updates), from
    /// the moving average or the weights themselves, recorded for gradients (with respect to
    /// `latent` when it requires them: `ganflow project`).
    func sampleForward(_ latent: Tensor, movingAverage: Bool) throws -> Tensor
}

extension GeneratorStage {
    /// `sampleForward` without recording gradients.
    public func generate(_ latent: Tensor, movingAverage: Bool) throws -> Tensor {
        try withoutGradients { try sampleForward(latent, movingAverage: movingAverage) }
    }

    /// Images for `latent` as sample evaluations make them: from the moving average when kept.
    public func generate(_ latent: Tensor) throws -> Tensor { try generate(latent, movingAverage: hasMovingAverage) }
}

/// A discriminator a loss can call again on new inputs (gradient penalties).
public protocol CriticStage: Stage {
    /// D's outputs for `images`, with batch statistics and no change to any running state.
    func critic(_ images: Tensor) throws -> Tensor
}

/// Model weights out of a run's checkpoint.
public enum ModelStateDict {
    /// The `state_dict` of the model stage `id` in a checkpoint (its moving average with `ema`),
    /// read without building the pipeline.
    public static func fromCheckpoint(_ archive: SafeTensorsArchive, stage id: String, ema: Bool) throws -> SafeTensorsArchive {
        let state = Checkpoint.stageState(id, in: archive)
        guard !state.tensors.isEmpty else { throw StageProblem("the checkpoint has no tensors of stage '\(id)'") }
        return try NetworkCore.stateDict(from: state, ema: ema)
    }
}

/// A model stage whose work is done by a `NetworkCore`: the stage only builds the network.
public protocol NetworkBacked: ModelStage {
    var core: NetworkCore { get }
}

extension NetworkBacked {
    public func outputTypes(for inputs: [String: PortType]) throws -> [String: PortType] { try core.outputTypes(inputs) }
    public func inputsNeeded(for output: String) -> [String]? { core.inputsNeeded(for: output) }
    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] { try core.evaluate(e) }
    public var parameters: [(String, Tensor)] { core.parameters }
    public func checkpointState() throws -> StageState { core.checkpointState() }
    public func restore(_ state: StageState) throws { try core.restore(state) }
    public var hasMovingAverage: Bool { core.ema != nil }
    public func stateDict(ema: Bool) throws -> SafeTensorsArchive { try core.stateDict(ema: ema) }
    public func loadStateDict(_ archive: SafeTensorsArchive) throws { try core.loadStateDict(archive) }
}

extension NetworkBacked where Self: GeneratorStage {
    public func sampleForward(_ latent: Tensor, movingAverage: Bool) throws -> Tensor {
        try core.sampleForward(latent, movingAverage: movingAverage)
    }
}

extension NetworkBacked where Self: CriticStage {
    public func critic(_ images: Tensor) throws -> Tensor { try core.net.forward(images, mode: .sample) }
}
