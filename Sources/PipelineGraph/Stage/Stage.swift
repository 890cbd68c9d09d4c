import TensorRuntime

/// A node of a pipeline: a typed, configured unit with input and output ports.
///
/// A stage type declares its schema (`typeName`, `summary`, `configKeys`) beside its code. An
/// instance is built once per run, after its inputs' types are known, and is then asked for
/// outputs on every evaluation. Stages own their state (parameters, running statistics, RNG
/// counters, loader positions) and expose it for checkpoints.
public protocol Stage: AnyObject, Sendable {
    /// The stable dotted name used as `"type"` in pipelines, e.g. `noise.normal`.
    static var typeName: String { get }
    /// One line for `ganflow stages`.
    static var summary: String { get }
    /// Configuration keys beyond the common ones.
    static var configKeys: [ConfigKey] { get }
    /// The scheduler lane the stage runs in (default: compute).
    static var lane: StageLane { get }
    /// What the stage's scalar outputs measure, which orders them in the metrics log and the
    /// progress line (default: other).
    static var scalarKind: ScalarKind { get }

    /// Builds the stage. `inputs` holds the type of every wired input port.
    init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws

    /// Output ports and their types, for the inputs the stage was built with.
    var outputs: [String: PortType] { get }

    /// Output types for other input types (another resolution of a progressive schedule).
    /// Throws a `StageProblem` when the inputs do not fit.
    func outputTypes(for inputs: [String: PortType]) throws -> [String: PortType]

    /// Output types when integer inputs (a resolution from a schedule) take the given values.
    /// The builder calls this for every scenario a `ScenarioSource` declares. The default
    /// ignores the values.
    func outputTypes(for inputs: [String: PortType], integers: [String: Int]) throws -> [String: PortType]

    /// The input ports that `output` needs, so that asking for one output evaluates only its
    /// part of the graph. nil means all inputs.
    func inputsNeeded(for output: String) -> [String]?

    /// Computes the requested outputs from the given inputs.
    func evaluate(_ evaluation: Evaluation) throws -> [String: PortValue]

    /// Trainable parameters with dotted names (PyTorch `state_dict` names for models).
    var parameters: [(String, Tensor)] { get }

    /// Everything to checkpoint: parameters, buffers and optimizer moments as tensors, and small
    /// values (counters, positions) as strings.
    func checkpointState() throws -> StageState

    /// Restores what `checkpointState` saved. Throws a `StageProblem` when it does not fit.
    func restore(_ state: StageState) throws

    /// Called once after the run's last step (flush files, close writers).
    func finish() throws

    /// Things the user should know about how the stage was built (a fallback it took, results
    /// that differ from what its name suggests); reported with the pipeline's warnings.
    var warnings: [String] { get }
}

extension Stage {
    public func outputTypes(for inputs: [String: PortType]) throws -> [String: PortType] { outputs }
    public func outputTypes(for inputs: [String: PortType], integers: [String: Int]) throws -> [String: PortType] {
        try outputTypes(for: inputs)
    }
    public func inputsNeeded(for output: String) -> [String]? { nil }
    public var parameters: [(String, Tensor)] { [] }
    public func checkpointState() throws -> StageState { StageState() }
    public func restore(_ state: StageState) throws {}
    public func finish() throws {}
    public static var lane: StageLane { .compute }
    public static var scalarKind: ScalarKind { .other }
    public var warnings: [String] { [] }
}

/// Where a stage runs in the Dispatch scheduler.
///
/// Compute stages take turns in one lane, each using all the kernel threads (OpenMP), so two
/// stages never run two OpenMP teams on the same cores at once. Data stages (those that read or
/// draw their values) and output stages (those that write files) run beside the compute lane:
/// their work is what overlaps with the kernels.
public enum StageLane: String, Sendable, CaseIterable {
    case compute
    case data
    case output
}

/// What a stage's scalar outputs are. Scalars of a step are logged objectives first, then
/// measurements, then the rest, each group by name.
public enum ScalarKind: Int, Sendable, Comparable {
    /// Values an optimizer can minimise (the stage's outputs are objectives).
    case objective
    /// Measurements of the model's quality, computed in sample evaluations.
    case measurement
    /// Everything else: learning rates, counters, probabilities.
    case other

    public static func < (a: ScalarKind, b: ScalarKind) -> Bool { a.rawValue < b.rawValue }
}

/// A stage's checkpointed state.
public struct StageState: @unchecked Sendable {
    public var tensors: [String: Tensor] = [:]
    public var values: [String: String] = [:]
    public init(tensors: [String: Tensor] = [:], values: [String: String] = [:]) {
        self.tensors = tensors
        self.values = values
    }
}

/// Whether an evaluation trains or only samples.
public enum EvaluationMode: Sendable {
    /// Part of a training phase: gradients are recorded, stages update their running state
    /// (batch statistics) and draw fresh randomness (dropout, noise).
    case train
    /// For the side stages run after the phases: no gradients, no updates to running state,
    /// fixed randomness.
    case sample
}

/// One request to a stage: which outputs, from which inputs, at which point of the run.
public struct Evaluation: @unchecked Sendable {
    public let outputs: Set<String>
    public let inputs: [String: PortValue]
    public let step: Int
    /// Counts every evaluation of the graph since the run began; keys per-evaluation randomness.
    public let index: Int
    public let mode: EvaluationMode
    public let seed: UInt64
    public let stageID: String
    /// The ranks of a data-parallel run (one process alone). Stages that synchronise something
    /// within an evaluation (batch statistics) do it over this.
    public var communicator: any Communicator = SingleProcessCommunicator()
    /// This process's rank and the rank count (0 and 1 alone).
    public var rank: Int { communicator.rank }
    public var ranks: Int { communicator.size }
    /// Recomputes this stage's inputs after the parameters of the stages named in `changed` were
    /// modified in place (an optimizer's line search tries several points in one step).
    ///
    /// Only the values that depend on those stages are computed again, in this evaluation's step,
    /// index and mode; everything else (data batches, noise, constant images) is reused, and
    /// committing stages are not run again. Set by the `Evaluator` and valid until it starts the
    /// next evaluation; nil when a stage is evaluated on its own.
    public var recompute: (@Sendable (_ changed: Set<String>) throws -> [String: PortValue])?
    /// How far the run is toward its end when this step began, 0 to 1: the larger of the steps
    /// done over the step budget and the seconds trained over the time limit (`--time-limit`),
    /// the same on every rank. Set by the `Evaluator`; 0 when a stage is evaluated on its own.
    public var progress: Double = 0

    public init(outputs: Set<String>, inputs: [String: PortValue], step: Int, index: Int, mode: EvaluationMode,
                seed: UInt64, stageID: String) {
        self.outputs = outputs
        self.inputs = inputs
        self.step = step
        self.index = index
        self.mode = mode
        self.seed = seed
        self.stageID = stageID
    }

    /// A random stream for this stage, evaluation and purpose. The values depend only on the
    /// pipeline seed, the stage id, `purpose` and the evaluation index, never on timing.
    ///
    /// In a data-parallel run each rank gets its own stream (the rank is part of the key), so a
    /// run is reproducible for a given rank count; with one process the streams are unchanged.
    public func random(_ purpose: String = "") -> PhiloxRandom {
        ranks > 1 && mode == .train ? sharedRandom(purpose + "/rank \(rank)") : sharedRandom(purpose)
    }

    /// The stream `random` gives a single process: the same on every rank, for randomness drawn
    /// for the global batch and then sliced (latent vectors).
    public func sharedRandom(_ purpose: String = "") -> PhiloxRandom {
        let stream = stableHash(stageID + "/" + purpose)
        let base = mode == .sample ? UInt64(1) << 63 : UInt64(index) << 24
        return PhiloxRandom(seed: seed, stream: stream, counter: base)
    }

    /// This rank's rows of a global batch of `batch` (all of them alone or in a sample
    /// evaluation, which rank 0 runs for everyone).
    public func shard(ofBatch batch: Int) -> Range<Int> {
        guard ranks > 1, mode == .train else { return 0..<batch }
        let share = batch / ranks
        return rank * share ..< (rank + 1) * share
    }

    public func tensor(_ port: String) throws -> Tensor {
        guard let t = inputs[port]?.tensor else {
            throw StageProblem(key: port, "input '\(port)' is not a tensor")
        }
        return t
    }

    public func pyramid(_ port: String) throws -> [Tensor] {
        guard case .pyramid(let ts)? = inputs[port] else {
            throw StageProblem(key: port, "input '\(port)' is not a pyramid")
        }
        return ts
    }

    public func integer(_ port: String) -> Int? {
        if case .integer(let n)? = inputs[port] { return n }
        return nil
    }
}

/// FNV-1a, stable across runs and platforms (Swift's `hashValue` is seeded per process).
public func stableHash(_ s: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 {
        h ^= UInt64(b)
        h = h &* 0x0000_0100_0000_01b3
    }
    return h
}

/// What a stage can see of the run while it is built.
public final class BuildContext: @unchecked Sendable {
    public let pipelineName: String
    public let seed: UInt64
    /// The file the pipeline came from; relative paths in configs resolve against its folder
    /// first, then against the working directory.
    public let pipelineFile: String
    public let outputDirectory: String
    /// The ranks of a data-parallel run (one process alone outside `mpirun`). Data stages serve
    /// this rank's shard, optimizers average gradients over it.
    public let communicator: any Communicator
    /// The pipeline's `distributed` section.
    public let distributed: DistributedOptions
    var stages: [String: any Stage] = [:]

    public init(pipelineName: String, seed: UInt64, pipelineFile: String, outputDirectory: String,
                communicator: any Communicator = SingleProcessCommunicator(),
                distributed: DistributedOptions = DistributedOptions()) {
        self.pipelineName = pipelineName
        self.seed = seed
        self.pipelineFile = pipelineFile
        self.outputDirectory = outputDirectory
        self.communicator = communicator
        self.distributed = distributed
    }

    /// This process's rank and the rank count.
    public var rank: Int { communicator.rank }
    public var ranks: Int { communicator.size }

    /// The rows of a global batch of `batch` that this rank serves; throws (naming `key`) when
    /// the batch does not divide evenly over the ranks.
    public func shard(ofBatch batch: Int, key: String) throws -> Range<Int> {
        let n = ranks
        guard batch % n == 0 else {
            throw StageProblem(key: key, "the global batch \(batch) does not divide over \(n) ranks (mpirun -np \(n)); use a multiple of \(n)")
        }
        let share = batch / n
        return rank * share ..< (rank + 1) * share
    }

    /// A stage built earlier (stage references are built first).
    public func stage(_ id: String) -> (any Stage)? { stages[id] }
}
