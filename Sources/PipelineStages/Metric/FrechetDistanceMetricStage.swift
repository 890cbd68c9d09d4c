import PipelineGraph
import TensorRuntime

/// The Frechet distance between Gaussians fitted to real and generated features (FID in the
/// feature space of the classifier that made them).
///
///     "fid": { "type": "metric.fid", "real": "features.real", "fake": "features.fake", "every": 500 }
///
/// Output `distance`. Means and covariances are taken in Double; the square root of the product
/// of covariances comes from symmetric eigendecompositions (`FrechetDistance`). The real set's
/// statistics are computed once. The value depends on the sample size (it is biased upwards for
/// small sets): compare runs at the same `count`.
public final class FrechetDistanceMetricStage: Stage, @unchecked Sendable {
    public static let typeName = "metric.fid"
    public static let summary = "Frechet distance between real and generated feature sets; output 'distance'."
    public static let scalarKind = ScalarKind.measurement
    public static let configKeys: [ConfigKey] = [
        ConfigKey("real", .wire, "Real features [n, d]."),
        ConfigKey("fake", .wire, "Generated features [m, d]."),
    ]

    public let outputs: [String: PortType] = ["distance": .scalar, "measured": .effect]
    private let realStatistics = ReferenceCache<GaussianStatistics>()

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        try MetricInputs.checkFeaturePair(inputs)
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let real = try e.tensor("real"), fake = try e.tensor("fake")
        let distance = try MetricInputs.measuring {
            let r = try realStatistics.value(for: real) { try GaussianStatistics(features: real) }
            return try FrechetDistance.distance(r, try GaussianStatistics(features: fake))
        }
        return ["distance": .scalar(Tensor(Float(distance))), "measured": .effect]
    }
}
