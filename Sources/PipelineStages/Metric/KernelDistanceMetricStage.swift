import PipelineGraph
import TensorRuntime

/// KID: the unbiased squared MMD between real and generated features with the cubic polynomial
/// kernel, averaged over random subsets.
///
///     "kid": { "type": "metric.kid", "real": "features.real", "fake": "features.fake", "every": 500 }
///
/// Outputs `mean` and `std` over `subsets` subsets of `subsetSize` (at most the smaller set's
/// size). The subsets are drawn from the pipeline seed and the stage id, the same at every
/// evaluation.
public final class KernelDistanceMetricStage: Stage, @unchecked Sendable {
    public static let typeName = "metric.kid"
    public static let summary = "Kernel distance (unbiased MMD^2, cubic polynomial kernel) over subsets; outputs 'mean' and 'std'."
    public static let scalarKind = ScalarKind.measurement
    public static let configKeys: [ConfigKey] = [
        ConfigKey("real", .wire, "Real features [n, d]."),
        ConfigKey("fake", .wire, "Generated features [m, d]."),
        ConfigKey("subsets", .int(min: 1, max: 100_000), default: .number(100), "Number of random subsets."),
        ConfigKey("subsetSize", .int(min: 2), default: .number(1000), "Rows per subset (at most the smaller set's size)."),
    ]

    public let outputs: [String: PortType] = ["mean": .scalar, "std": .scalar, "measured": .effect]
    let subsets: Int
    let subsetSize: Int
    let seed: UInt64

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        try MetricInputs.checkFeaturePair(inputs)
        subsets = config.int("subsets")
        subsetSize = config.int("subsetSize")
        seed = context.seed ^ stableHash("kid/" + config.stageID)
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let real = try e.tensor("real"), fake = try e.tensor("fake")
        let (mean, std) = try MetricInputs.measuring {
            try KernelDistance.kid(real, fake, subsets: subsets, subsetSize: subsetSize, seed: seed)
        }
        return ["mean": .scalar(Tensor(Float(mean))), "std": .scalar(Tensor(Float(std))), "measured": .effect]
    }
}
