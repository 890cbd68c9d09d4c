import NeuralNet
import PipelineGraph
import TensorRuntime

/// StyleGAN2's path-length regularization of a `generator.stylegan2` stage, as a term of the
/// generator's loss (stylegan2-ada-pytorch's `Gpl` phase):
///
///     "pl": { "type": "loss.pathlength", "generator": "G", "input": "z.samples", "every": 4, "weight": 2 },
///     "gLoss": { "type": "loss.sum", "inputs": { "adv": "loss.generator", "pl": "pl.generator" } }
///
/// Every `every`-th training evaluation (lazy regularization), the generator is run again on the
/// first `N / batchShrink` latents of `input`, and the penalty `mean (|J_w^T u| - a)^2` (see
/// `PathLengthRegularizer`) weighted by `weight * every` is output 'generator'; on the other
/// evaluations 'generator' is 0. The gradient of the lengths is taken with a recorded backward
/// pass, so the optimizer differentiates it again. Outputs 'lengths' (the last mean length) and
/// 'mean' (the running mean `a`, checkpointed) for the metrics log. At `weight` 0 the penalty is
/// not computed at all (no extra generator pass), so a pipeline can keep the stage and switch it on
/// with `--set pl.weight=2`.
public final class PathLengthLossStage: Stage, @unchecked Sendable {
    public static let typeName = "loss.pathlength"
    public static let summary = "StyleGAN2 path-length regularization of a generator.stylegan2 (lazy); outputs 'generator', 'lengths', 'mean'."
    public static let scalarKind = ScalarKind.objective
    public static let configKeys: [ConfigKey] = [
        ConfigKey("generator", .stageRef, "The generator.stylegan2 stage to regularize."),
        ConfigKey("input", .wire, "Latent vectors z the generator takes; the first N / batchShrink are used."),
        ConfigKey("every", .int(min: 1), default: .number(4), "Compute the penalty every this many generator losses, weighted by it."),
        ConfigKey("weight", .number(min: 0), default: .number(2), "Weight of the penalty (StyleGAN2: 2); 0 skips its computation."),
        ConfigKey("decay", .number(min: 0, max: 1), default: .number(0.01), "Decay of the running mean path length."),
        ConfigKey("batchShrink", .int(min: 1), default: .number(2), "Divide the batch by this for the penalty."),
        ConfigKey("labels", .wire, default: .null, "Class labels [N] of the latents, for a class-conditional generator (the wire its own 'labels' takes)."),
    ]

    public let outputs: [String: PortType] = ["generator": .scalar, "lengths": .scalar, "mean": .scalar]
    let generator: StyleGAN2GeneratorStage
    let every: Int
    let weight: Float
    let batch: Int
    let labeled: Bool
    var regularizer: PathLengthRegularizer
    /// Training evaluations so far, for the lazy schedule; checkpointed.
    var clock = 0
    var lastLength: Float = 0

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let id = config.string("generator")
        guard let g = context.stage(id) as? StyleGAN2GeneratorStage else {
            throw StageProblem(key: "generator", "stage '\(id)' is not a generator.stylegan2")
        }
        generator = g
        let z = try ModelKeys.latentShape(inputs, key: "input")
        guard z.dropFirst().reduce(1, *) == g.latentShape.dropFirst().reduce(1, *) else {
            throw StageProblem(key: "input", "latents \(describe(z)) do not fit generator '\(id)', which takes \(describe(g.latentShape))")
        }
        labeled = !config.isNull("labels")
        if let k = g.classCount, !labeled {
            throw StageProblem(key: "labels", "generator '\(id)' is class-conditional (\(k) classes): wire 'labels' to the class labels of 'input', as the generator's own 'labels'")
        }
        if labeled {
            guard g.classCount != nil else { throw StageProblem(key: "labels", "generator '\(id)' is not class-conditional; remove 'labels'") }
            guard let shape = inputs["labels"]?.shape, shape == [z[0]] else {
                throw StageProblem(key: "labels", "expected class labels [\(z[0])] for the latents, found \(inputs["labels"].map { "\($0)" } ?? "nothing")")
            }
        }
        batch = max(1, z[0] / config.int("batchShrink"))
        every = config.int("every")
        weight = config.float("weight")
        regularizer = PathLengthRegularizer(decay: config.float("decay"))
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        var loss = Tensor(0)
        if e.mode == .train {
            clock += 1
            if weight > 0, (clock - 1) % every == 0 {
                let z = try StyleGAN2GeneratorStage.flat(try e.tensor("input"))
                let rows = 0..<min(batch, z.shape[0])
                let labels = labeled ? try e.tensor("labels").sliced(axis: 0, rows) : nil
                var rng = e.random("pathLength")
                let (images, ws) = try ClassLabels.with(labels) { try generator.imagesAndWs(try z.sliced(axis: 0, rows), rng: &rng) }
                let direction = PathLengthRegularizer.direction(like: images, rng: &rng)
                let (penalty, lengths) = try regularizer.penalty(images: images, ws: ws, direction: direction)
                lastLength = lengths.detached().mean().item()
                loss = penalty * (weight * Float(every))
            }
        }
        return ["generator": .scalar(loss), "lengths": .scalar(Tensor(lastLength)), "mean": .scalar(Tensor(regularizer.mean))]
    }

    public func checkpointState() throws -> StageState {
        StageState(values: ["clock": String(clock), "mean": String(regularizer.mean), "lastLength": String(lastLength)])
    }

    public func restore(_ state: StageState) throws {
        clock = state.values["clock"].flatMap(Int.init) ?? 0
        regularizer.mean = state.values["mean"].flatMap(Float.init) ?? 0
        lastLength = state.values["lastLength"].flatMap(Float.init) ?? 0
    }
}
