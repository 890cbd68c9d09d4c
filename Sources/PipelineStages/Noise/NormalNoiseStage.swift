import PipelineGraph
import TensorRuntime

/// Draws latent vectors from N(0, 1).
///
///     "z": { "type": "noise.normal", "dim": 100, "batch": 64 }
///
/// Training evaluations draw fresh vectors each time, from a stream keyed by the pipeline seed,
/// the stage id and the evaluation index. Sample evaluations (sinks, metrics) get the same fixed
/// batch every time, so grids are comparable across steps.
public final class NormalNoiseStage: Stage, @unchecked Sendable {
    public static let typeName = "noise.normal"
    public static let summary = "Latent vectors from N(0, 1); fixed vectors for sinks and metrics."
    public static let configKeys: [ConfigKey] = [
        ConfigKey("dim", .int(min: 1, max: 1 << 16), "Length of each latent vector."),
        ConfigKey("batch", .int(min: 1, max: 1 << 16), default: .number(64), "Vectors drawn per evaluation."),
        ConfigKey("spatial", .bool, default: .bool(false), "Shape [batch, dim, 1, 1] (for convolutional generators) instead of [batch, dim]."),
        ConfigKey("servedBatch", .wire, default: .null, "An integer input: draw only the first this many of the 'batch' vectors (a progressive schedule's per-resolution batch)."),
    ]

    let shape: [Int]
    public let outputs: [String: PortType]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let batch = config.int("batch"), dim = config.int("dim")
        shape = config.bool("spatial") ? [batch, dim, 1, 1] : [batch, dim]
        outputs = ["samples": .tensor(shape)]
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
        ["samples": .tensor(try shape(served: integers["servedBatch"]))]
    }

    public func evaluate(_ evaluation: Evaluation) throws -> [String: PortValue] {
        var rng = evaluation.random("samples")
        // The first n vectors of a full draw: one stream, filled in order.
        return ["samples": .tensor(Tensor(randomNormal: try shape(served: evaluation.integer("servedBatch")), using: &rng))]
    }
}
