import PipelineGraph
import TensorRuntime

/// The content loss of style transfer: how far the image's features are from the content image's.
///
///     "contentLoss": { "type": "loss.content", "input": "F.image_content", "target": "F.content_content" }
///
/// For feature maps x_l and targets t_l of each level l: sum over l of w_l * mean((x_l - t_l)^2).
/// Output `loss`.
public final class ContentLossStage: Stage, @unchecked Sendable {
    public static let typeName = "loss.content"
    public static let summary = "Weighted mean squared distance between feature maps and target feature maps; output 'loss'."
    public static let scalarKind = ScalarKind.objective
    public static let configKeys: [ConfigKey] = FeatureLossSupport.keys(
        "Features of the image being made (a pyramid or a tensor).",
        "Features of the content image, of the same shapes.")

    public let outputs: [String: PortType] = ["loss": .scalar]
    let weights: [Float]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let x = try FeatureLossSupport.levels(inputs["input"], key: "input")
        let t = try FeatureLossSupport.levels(inputs["target"], key: "target")
        guard x == t else {
            throw StageProblem(key: "target", "target features \(inputs["target"]!) do not match input features \(inputs["input"]!)")
        }
        weights = try FeatureLossSupport.weights(config, levels: x.count)
    }

    public func outputTypes(for inputs: [String: PortType]) throws -> [String: PortType] {
        guard try FeatureLossSupport.levels(inputs["input"], key: "input") == FeatureLossSupport.levels(inputs["target"], key: "target") else {
            throw StageProblem(key: "target", "target features \(inputs["target"]!) do not match input features \(inputs["input"]!)")
        }
        return outputs
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let x = try FeatureLossSupport.values(e, "input"), t = try FeatureLossSupport.values(e, "target")
        return ["loss": .scalar(try Self.loss(x, t, weights: weights))]
    }

    /// sum_l w_l mean((x_l - t_l)^2).
    public static func loss(_ x: [Tensor], _ t: [Tensor], weights: [Float]) throws -> Tensor {
        var total = Tensor(0)
        for (l, w) in weights.enumerated() where w != 0 {
            total = try total + Tensor.meanSquaredError(x[l], t[l]) * w
        }
        return total
    }
}
