import PipelineGraph
import TensorRuntime

/// Improved precision and recall (Kynkaanniemi et al., 2019) of generated against real features.
///
///     "pr": { "type": "metric.precisionrecall", "real": "features.real", "fake": "features.fake", "every": 500 }
///
/// Outputs `precision` (how many samples look real) and `recall` (how much of the real variety
/// the samples cover), with k-nearest-neighbour balls (`k`, 3 in the paper). Both sets are cut to
/// `samples` rows (null: the smaller set's size; a random subset, the same at every evaluation),
/// because the k-NN radii shrink as a set grows and equal sizes keep the two sides comparable.
public final class PrecisionRecallMetricStage: Stage, @unchecked Sendable {
    public static let typeName = "metric.precisionrecall"
    public static let summary = "Improved precision and recall with k-NN manifolds; outputs 'precision' and 'recall'."
    public static let scalarKind = ScalarKind.measurement
    public static let configKeys: [ConfigKey] = [
        ConfigKey("real", .wire, "Real features [n, d]."),
        ConfigKey("fake", .wire, "Generated features [m, d]."),
        ConfigKey("k", .int(min: 1, max: 1000), default: .number(3), "The neighbour whose distance sets each ball's radius."),
        ConfigKey("samples", .int(min: 2), default: .null, "Rows used from each set (null: the smaller set's size)."),
    ]

    public let outputs: [String: PortType] = ["precision": .scalar, "recall": .scalar, "measured": .effect]
    let k: Int
    let samples: Int
    let seed: UInt64

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        k = config.int("k")
        try MetricInputs.checkFeaturePair(inputs, minimum: k + 1)
        let smaller = min(inputs["real"]!.shape![0], inputs["fake"]!.shape![0])
        samples = min(config.optionalInt("samples") ?? smaller, smaller)
        guard samples > k else {
            throw StageProblem(key: "samples", "k = \(k) needs more than \(k) samples per set, found \(samples)")
        }
        seed = context.seed ^ stableHash("precisionrecall/" + config.stageID)
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        var real = try e.tensor("real"), fake = try e.tensor("fake")
        var rng = PhiloxRandom(seed: seed, stream: stableHash("subsets"))
        if real.shape[0] > samples { real = try KernelDistance.rows(real, KernelDistance.sample(real.shape[0], samples, &rng)) }
        if fake.shape[0] > samples { fake = try KernelDistance.rows(fake, KernelDistance.sample(fake.shape[0], samples, &rng)) }
        let (precision, recall) = try MetricInputs.measuring { try PrecisionRecall.compute(real: real, fake: fake, k: k) }
        return ["precision": .scalar(Tensor(Float(precision))), "recall": .scalar(Tensor(Float(recall))), "measured": .effect]
    }
}
