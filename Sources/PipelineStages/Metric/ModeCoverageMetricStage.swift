import PipelineGraph
import TensorRuntime

/// Mode coverage: how the classifier's decisions on generated samples spread over its classes.
///
///     "modes": { "type": "metric.modes", "logits": "features.fakeLogits", "every": 500 }
///
/// Outputs `modes` (classes holding at least `minShare` of the samples) and `kl` (the KL
/// divergence of the class histogram from uniform: 0 for a perfectly balanced generator, log K when
/// every sample falls in one class). Mode collapse shows as `modes` falling and `kl` rising.
public final class ModeCoverageMetricStage: Stage, @unchecked Sendable {
    public static let typeName = "metric.modes"
    public static let summary = "Class histogram of generated samples under a classifier; outputs 'modes' (classes with >= minShare) and 'kl' (to uniform)."
    public static let scalarKind = ScalarKind.measurement
    public static let configKeys: [ConfigKey] = [
        ConfigKey("logits", .wire, "Classifier logits of generated samples [N, classes] (a features stage's 'fakeLogits')."),
        ConfigKey("minShare", .number(min: 0, max: 1), default: .number(0.01), "Share of the samples a class needs to count as a covered mode."),
    ]

    public let outputs: [String: PortType] = ["modes": .scalar, "kl": .scalar, "measured": .effect]
    let minShare: Double

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        guard let s = inputs["logits"]?.shape, s.count == 2, s[1] >= 2 else {
            throw StageProblem(key: "logits", "expected logits [N, classes] with at least 2 classes, found \(inputs["logits"].map { "\($0)" } ?? "nothing")")
        }
        minShare = config.double("minShare")
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let coverage = ModeCoverage(logits: try e.tensor("logits"), minShare: minShare)
        return ["modes": .scalar(Tensor(Float(coverage.modes))), "kl": .scalar(Tensor(Float(coverage.klToUniform))), "measured": .effect]
    }
}
