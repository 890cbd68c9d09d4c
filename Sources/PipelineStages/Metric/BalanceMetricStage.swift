import PipelineGraph
import TensorRuntime

/// A loss-balance monitor: the discriminator's accuracy on real and on generated images.
///
///     "balance": { "type": "metric.balance", "real": "D.real", "fake": "D.fake" }
///     "schedule": [ { "run": ["optD", "balance"] }, { "run": "optG" } ]
///
/// Outputs `real` (the fraction of real images D scores above `threshold`) and `fake` (the
/// fraction of generated ones at or below it). Driven by D's phase, as above, it reads the very
/// outputs D trains on, at no extra cost; left out of the schedule it runs after the phases on
/// the fixed sample batch. Both near 1 means D is winning (G's gradients vanish); both near 0.5
/// means D cannot tell. With `skipBelow`, the optimizer's `skipped` output gives the fraction of
/// skipped D updates beside these.
public final class BalanceMetricStage: Stage, @unchecked Sendable {
    public static let typeName = "metric.balance"
    public static let summary = "The discriminator's accuracy on real and on generated images; outputs 'real' and 'fake'."
    public static let scalarKind = ScalarKind.measurement
    public static let configKeys: [ConfigKey] = [
        ConfigKey("real", .wire, "D's outputs on real images."),
        ConfigKey("fake", .wire, "D's outputs on generated images."),
        ConfigKey("threshold", .number(), default: .number(0), "The output above which D calls an image real (0 for logits and critics)."),
    ]

    public let outputs: [String: PortType] = ["real": .scalar, "fake": .scalar, "measured": .effect]
    let threshold: Float

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        for port in ["real", "fake"] {
            guard case .tensor = inputs[port] else {
                throw StageProblem(key: port, "expected D's output tensor, found \(inputs[port].map { "\($0)" } ?? "nothing")")
            }
        }
        threshold = config.float("threshold")
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let real = try e.tensor("real").scalars, fake = try e.tensor("fake").scalars
        let realHits = real.filter { $0 > threshold }.count, fakeHits = fake.filter { $0 <= threshold }.count
        return ["real": .scalar(Tensor(Float(realHits) / Float(max(real.count, 1)))),
                "fake": .scalar(Tensor(Float(fakeHits) / Float(max(fake.count, 1)))), "measured": .effect]
    }
}
