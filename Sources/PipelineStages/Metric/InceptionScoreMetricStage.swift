import PipelineGraph
import TensorRuntime

/// The Inception Score of generated images from their class logits (`InceptionScore`).
///
///     "is": { "type": "metric.is", "logits": "inception.fakeLogits", "every": 500 }
///
/// Outputs `mean` and `std` over `splits` parts (10, as torch-fidelity). The shuffle is drawn from
/// the pipeline seed and the stage id, the same at every evaluation. Only comparable with papers
/// on `features.inception` with pytorch-fid's weights, and at the usual 50,000 samples.
public final class InceptionScoreMetricStage: Stage, @unchecked Sendable {
    public static let typeName = "metric.is"
    public static let scalarKind = ScalarKind.measurement
    public static let summary = "Inception Score (exp of the mean KL from each sample's class distribution to their mean) over splits; outputs 'mean' and 'std'."
    public static let configKeys: [ConfigKey] = [
        ConfigKey("logits", .wire, "Class logits of generated images [n, classes] (a features stage's 'fakeLogits')."),
        ConfigKey("splits", .int(min: 1, max: 1000), default: .number(10), "Parts the samples are cut into."),
    ]

    public let outputs: [String: PortType] = ["mean": .scalar, "std": .scalar, "measured": .effect]
    let splits: Int
    let seed: UInt64

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        splits = config.int("splits")
        guard let s = inputs["logits"]?.shape, s.count == 2, s[1] >= 2 else {
            throw StageProblem(key: "logits", "expected class logits [n, classes] (a features stage's 'fakeLogits'), found \(inputs["logits"].map { "\($0)" } ?? "nothing")")
        }
        guard s[0] >= splits else {
            throw StageProblem(key: "splits", "\(s[0]) samples cannot be cut into \(splits) splits")
        }
        seed = context.seed ^ stableHash("is/" + config.stageID)
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let logits = try e.tensor("logits")
        let (mean, std) = try MetricInputs.measuring { try InceptionScore.score(logits: logits, splits: splits, seed: seed) }
        return ["mean": .scalar(Tensor(Float(mean))), "std": .scalar(Tensor(Float(std))), "measured": .effect]
    }
}
