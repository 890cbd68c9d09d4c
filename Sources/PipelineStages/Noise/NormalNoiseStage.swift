import PipelineGraph
import TensorRuntime

/// Draws latent vectors from N(0, 1).
///
///     "z": { "type": "noise.normal", "dim": 100, "batch": 64 }
///
/// Training evaluations draw fresh vectors each time, from a stream keyed by the pipeline seed,
/// the stage id and the evaluation index. Sample evaluations (sinks, metrics) get the same fixed
/// batch every time, so grids are comparable across steps.
///
/// In a data-parallel run `batch` is the global batch: each rank draws the whole batch from the
/// stream one process would use and keeps its own rows, so the ranks' latents together are the
/// single process's.
public final class NormalNoiseStage: Stage, @unchecked Sendable {
    public static let typeName = "noise.normal"
    public static let summary = "Latent vectors from N(0, 1); fixed vectors for sinks and metrics."
    public static let lane = StageLane.data
    public static let configKeys: [ConfigKey] = [
        ConfigKey("dim", .int(min: 1, max: 1 << 16), "Length of each latent vector."),
        ConfigKey("batch", .int(min: 1, max: 1 << 16), default: .number(64), "Vectors drawn per evaluation."),
        ConfigKey("spatial", .bool, default: .bool(false), "Shape [batch, dim, 1, 1] (for convolutional generators) instead of [batch, dim]."),
        ConfigKey("servedBatch", .wire, default: .null, "An integer input: draw only the first this many of the 'batch' vectors (a progressive schedule's per-resolution batch)."),
    ]

    let shape: [Int]
    let ranks: Int
    public let outputs: [String: PortType]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let batch = config.int("batch"), dim = config.int("dim")
        shape = config.bool("spatial") ? [batch, dim, 1, 1] : [batch, dim]
        ranks = context.ranks
        let share = try context.shard(ofBatch: batch, key: "batch").count
        outputs = ["samples": .tensor([share] + shape.dropFirst())]
        if let t = inputs["servedBatch"], t != .integer {
            throw StageProblem(key: "servedBatch", "expected an integer input, found \(t)")
        }
    }

    /// The shape drawn for a served batch of `n` (the configured batch when nil).
    func shape(served n: Int?) throws -> [Int] {
        guard let n else { return shape }
        guard n >= 1, n <= shape[0] else {
            throw StageProblem(key: "servedBatch", "a served batch of \(n) needs 1 to 'batch' (\(shape[0])) vectors")
        }
        return [n] + shape.dropFirst()
    }

    public func outputTypes(for inputs: [String: PortType], integers: [String: Int]) throws -> [String: PortType] {
        var s = try shape(served: integers["servedBatch"])
        if s[0] % ranks != 0 {
            throw StageProblem(key: "servedBatch", "a served batch of \(s[0]) does not divide over \(ranks) ranks")
        }
        s[0] /= ranks
        return ["samples": .tensor(s)]
    }

    public func evaluate(_ evaluation: Evaluation) throws -> [String: PortValue] {
        var rng = evaluation.sharedRandom("samples")
        // The first n vectors of a full draw: one stream, filled in order.
        let all = Tensor(randomNormal: try shape(served: evaluation.integer("servedBatch")), using: &rng)
        let rows = evaluation.shard(ofBatch: all.shape[0])
        if rows.count == all.shape[0] { return ["samples": .tensor(all)] }
        guard all.shape[0] % evaluation.ranks == 0 else {
            throw StageProblem(key: "servedBatch", "a served batch of \(all.shape[0]) does not divide over \(evaluation.ranks) ranks")
        }
        return ["samples": .tensor(try all.sliced(axis: 0, rows).copy())]
    }
}
