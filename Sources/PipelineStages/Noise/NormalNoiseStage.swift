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
    ]

    let shape: [Int]
    public let outputs: [String: PortType]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let batch = config.int("batch"), dim = config.int("dim")
        shape = config.bool("spatial") ? [batch, dim, 1, 1] : [batch, dim]
        outputs = ["samples": .tensor(shape)]
    }

    public func evaluate(_ evaluation: Evaluation) throws -> [String: PortValue] {
        var rng = evaluation.random("samples")
        return ["samples": .tensor(Tensor(randomNormal: shape, using: &rng))]
    }
}
