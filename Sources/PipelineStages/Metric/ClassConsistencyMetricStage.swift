import PipelineGraph
import TensorRuntime

/// Class consistency of a conditional generator: how often a classifier gives its samples the
/// class they were generated for.
///
///     "consistency": { "type": "metric.consistency", "logits": "features.fakeLogits", "labels": "features.fakeLabels", "every": 500 }
///
/// Outputs `accuracy` (the share of samples classified as their requested class), `worst` (the
/// lowest of the per-class shares), `modes` (classes holding at least `minShare` of all samples,
/// as `metric.modes`) and `classModes` (the mean, over requested classes, of the classes that hold
/// at least `minShare` of that class's samples: 1 when every class is generated as itself alone).
public final class ClassConsistencyMetricStage: Stage, @unchecked Sendable {
    public static let typeName = "metric.consistency"
    public static let summary = "Class consistency of a conditional generator under a classifier; outputs 'accuracy', 'worst', 'modes' and 'classModes'."
    public static let scalarKind = ScalarKind.measurement
    public static let configKeys: [ConfigKey] = [
        ConfigKey("logits", .wire, "Classifier logits of generated samples [N, classes] (a features stage's 'fakeLogits')."),
        ConfigKey("labels", .wire, "The classes the samples were generated for [N] (a features stage's 'fakeLabels')."),
        ConfigKey("minShare", .number(min: 0, max: 1), default: .number(0.01), "Share of the samples a class needs to count as a mode."),
    ]

    public let outputs: [String: PortType] = ["accuracy": .scalar, "worst": .scalar, "modes": .scalar, "classModes": .scalar, "measured": .effect]
    let minShare: Double

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        guard let s = inputs["logits"]?.shape, s.count == 2, s[1] >= 2 else {
            throw StageProblem(key: "logits", "expected logits [N, classes] with at least 2 classes, found \(inputs["logits"].map { "\($0)" } ?? "nothing")")
        }
        guard inputs["labels"]?.shape == [s[0]] else {
            throw StageProblem(key: "labels", "expected the requested classes [\(s[0])] of the \(s[0]) samples, found \(inputs["labels"].map { "\($0)" } ?? "nothing")")
        }
        minShare = config.double("minShare")
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let score = ClassConsistency(logits: try e.tensor("logits"), requested: try e.tensor("labels").scalars.map { Int($0) },
                                     minShare: minShare)
        return ["accuracy": .scalar(Tensor(Float(score.accuracy))), "worst": .scalar(Tensor(Float(score.perClass.min() ?? 0))),
                "modes": .scalar(Tensor(Float(score.modes))), "classModes": .scalar(Tensor(Float(score.classModes))), "measured": .effect]
    }
}

/// A classifier's decisions on samples generated for known classes.
public struct ClassConsistency: Sendable {
    /// Share of all samples classified as their requested class.
    public let accuracy: Double
    /// That share for each requested class present (by class index; classes never requested are skipped).
    public let perClass: [Double]
    /// Classes holding at least `minShare` of all samples.
    public let modes: Int
    /// The mean number of classes holding at least `minShare` of one requested class's samples.
    public let classModes: Double

    public init(logits: Tensor, requested: [Int], minShare: Double) {
        let decisions = ClassScores.argmax(logits)
        let k = logits.shape[1]
        accuracy = Double(zip(decisions, requested).filter { $0 == $1 }.count) / Double(max(decisions.count, 1))
        modes = ModeCoverage(decisions: decisions, classes: k, minShare: minShare).modes
        var perClass: [Double] = [], modeCounts: [Int] = []
        for c in Set(requested).sorted() {
            let mine = zip(decisions, requested).filter { $0.1 == c }.map(\.0)
            perClass.append(Double(mine.filter { $0 == c }.count) / Double(mine.count))
            modeCounts.append(ModeCoverage(decisions: mine.map { min(max($0, 0), k - 1) }, classes: k, minShare: minShare).modes)
        }
        self.perClass = perClass
        classModes = modeCounts.isEmpty ? 0 : Double(modeCounts.reduce(0, +)) / Double(modeCounts.count)
    }
}
