import PipelineGraph
import TensorRuntime

/// Intra-FID: the Frechet distance between real and generated features of each class, averaged
/// over the classes (Miyato and Koyama 2018), for conditional generators.
///
///     "intrafid": { "type": "metric.intrafid", "real": "features.real", "realLabels": "features.realLabels",
///                   "fake": "features.fake", "fakeLabels": "features.fakeLabels", "every": 500 }
///
/// Outputs `distance` (the mean over classes) and `worst` (the largest class's). A class needs at
/// least 2 real and 2 generated samples; with few per class the value is biased upwards (compare
/// runs at the same `count`).
public final class IntraFrechetDistanceMetricStage: Stage, @unchecked Sendable {
    public static let typeName = "metric.intrafid"
    public static let summary = "Per-class Frechet distance between real and generated features, averaged (intra-FID); outputs 'distance' and 'worst'."
    public static let scalarKind = ScalarKind.measurement
    public static let configKeys: [ConfigKey] = [
        ConfigKey("real", .wire, "Real features [n, d]."),
        ConfigKey("realLabels", .wire, "Classes of the real features [n] (a features stage's 'realLabels')."),
        ConfigKey("fake", .wire, "Generated features [m, d]."),
        ConfigKey("fakeLabels", .wire, "Requested classes of the generated features [m] (a features stage's 'fakeLabels')."),
    ]

    public let outputs: [String: PortType] = ["distance": .scalar, "worst": .scalar, "measured": .effect]
    private let realStatistics = ReferenceCache<[Int: GaussianStatistics]>()

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        try MetricInputs.checkFeaturePair(inputs)
        for (labels, features) in [("realLabels", "real"), ("fakeLabels", "fake")] {
            let n = inputs[features]!.shape![0]
            guard inputs[labels]?.shape == [n] else {
                throw StageProblem(key: labels, "expected the classes [\(n)] of the \(n) '\(features)' features, found \(inputs[labels].map { "\($0)" } ?? "nothing")")
            }
        }
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let real = try e.tensor("real"), fake = try e.tensor("fake")
        let (mean, worst) = try MetricInputs.measuring {
            let r = try realStatistics.value(for: real) { try Self.statistics(real, labels: try e.tensor("realLabels")) }
            let f = try Self.statistics(fake, labels: try e.tensor("fakeLabels"))
            var distances: [Double] = []
            for (c, g) in f.sorted(by: { $0.key < $1.key }) {
                guard let rc = r[c] else { throw TensorError("class \(c) was generated but has fewer than 2 real samples") }
                distances.append(try FrechetDistance.distance(rc, g))
            }
            guard !distances.isEmpty else { throw TensorError("no class has 2 or more generated samples") }
            return (distances.reduce(0, +) / Double(distances.count), distances.max()!)
        }
        return ["distance": .scalar(Tensor(Float(mean))), "worst": .scalar(Tensor(Float(worst))), "measured": .effect]
    }

    /// Gaussian statistics of the rows of `features` of each class with at least 2 rows.
    static func statistics(_ features: Tensor, labels: Tensor) throws -> [Int: GaussianStatistics] {
        let classes = labels.scalars.map { Int($0) }
        var rows: [Int: [Int]] = [:]
        for (i, c) in classes.enumerated() { rows[c, default: []].append(i) }
        let d = features.shape[1], v = features.scalars
        var out: [Int: GaussianStatistics] = [:]
        for (c, r) in rows where r.count >= 2 {
            var picked = [Float](); picked.reserveCapacity(r.count * d)
            for i in r { picked += v[(i * d)..<((i + 1) * d)] }
            out[c] = try GaussianStatistics(features: try Tensor(shape: [r.count, d], scalars: picked))
        }
        return out
    }
}
