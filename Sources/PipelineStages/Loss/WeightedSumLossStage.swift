import PipelineGraph
import TensorRuntime

/// A weighted sum of scalar losses: the objective an optimizer minimises.
///
///     "loss": { "type": "loss.sum", "inputs": { "content": "contentLoss.loss", "style": "styleLoss.loss", "tv": "tvLoss.loss" },
///               "weights": { "content": 1, "style": 150, "tv": 30 } }
///
/// Output `loss` = sum of weight * input; an input without a weight counts once.
public final class WeightedSumLossStage: Stage, @unchecked Sendable {
    public static let typeName = "loss.sum"
    public static let summary = "Weighted sum of scalar inputs; output 'loss'."
    public static let scalarKind = ScalarKind.objective
    public static let configKeys: [ConfigKey] = [
        ConfigKey("inputs", .wireMap, "Scalar losses by name."),
        ConfigKey("weights", .any, default: .null, "Weight of each input by name, e.g. {\"style\": 150}; missing names weigh 1."),
    ]

    public let outputs: [String: PortType] = ["loss": .scalar]
    /// Input names in config order, with their weights.
    let terms: [(name: String, weight: Float)]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let names = config.raw("inputs").objectEntries?.map(\.0) ?? []
        guard !names.isEmpty else { throw StageProblem(key: "inputs", "give at least one input") }
        for name in names where inputs[name] != .scalar {
            throw StageProblem(key: name, "expected a scalar loss, found \(inputs[name].map { "\($0)" } ?? "nothing")")
        }
        var weights: [String: Float] = [:]
        if !config.isNull("weights") {
            guard let entries = config.raw("weights").objectEntries else {
                throw StageProblem(key: "weights", "expected an object of numbers by input name, found \(config.raw("weights").serialized(indent: nil))")
            }
            for (name, value) in entries {
                guard names.contains(name) else {
                    throw StageProblem(key: "weights", "no input '\(name)' to weigh", suggestion: didYouMean(name, among: names))
                }
                guard case .number(let w) = value else {
                    throw StageProblem(key: "weights", "weight of '\(name)': expected a number, found \(value.serialized(indent: nil))")
                }
                weights[name] = Float(w)
            }
        }
        terms = names.map { ($0, weights[$0] ?? 1) }
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        var total = Tensor(0)
        for (name, weight) in terms {
            total = try total + (try e.tensor(name)) * weight
        }
        return ["loss": .scalar(total)]
    }
}
