import PipelineGraph
import TensorRuntime

/// The style loss of style transfer: how far the Gram matrices of the image's features are from
/// the style image's.
///
///     "styleLoss": { "type": "loss.style", "input": "F.image_style", "target": "F.style_style" }
///
/// For feature maps x_l [N, C, H, W] and targets s_l [1 or N, C, H', W'] of each level l:
/// sum over l of w_l * mean((G(x_l) - G(s_l))^2), where G(f) = F F^T / (H W) with F the [C, H W]
/// matrix of one image. The style image may have another size than the image being made.
/// Output `loss`.
public final class StyleLossStage: Stage, @unchecked Sendable {
    public static let typeName = "loss.style"
    public static let summary = "Weighted mean squared distance between Gram matrices (normalised by H*W) of feature maps; output 'loss'."
    public static let scalarKind = ScalarKind.objective
    public static let configKeys: [ConfigKey] = FeatureLossSupport.keys(
        "Features of the image being made (a pyramid or a tensor).",
        "Features of the style image: the same channels per level, any size, a batch of 1 or the input's.")

    public let outputs: [String: PortType] = ["loss": .scalar]
    let weights: [Float]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let levels = try Self.check(inputs)
        weights = try FeatureLossSupport.weights(config, levels: levels)
    }

    /// Checks that input and target have the same levels and channels; returns the level count.
    static func check(_ inputs: [String: PortType]) throws -> Int {
        let x = try FeatureLossSupport.levels(inputs["input"], key: "input")
        let t = try FeatureLossSupport.levels(inputs["target"], key: "target")
        let fits = x.count == t.count && zip(x, t).allSatisfy { a, b in
            a.count == 4 && b.count == 4 && a[1] == b[1] && (b[0] == 1 || b[0] == a[0])
        }
        guard fits else {
            throw StageProblem(key: "target", "target features \(inputs["target"]!) do not fit input features \(inputs["input"]!): each level needs [N, C, H, W] with the same C, and a target batch of 1 or N")
        }
        return x.count
    }

    public func outputTypes(for inputs: [String: PortType]) throws -> [String: PortType] {
        _ = try Self.check(inputs)
        return outputs
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let x = try FeatureLossSupport.values(e, "input"), t = try FeatureLossSupport.values(e, "target")
        return ["loss": .scalar(try Self.loss(x, t, weights: weights))]
    }

    /// The Gram matrices of `features` [N, C, H, W], normalised by H W: [N, C, C].
    public static func gramMatrix(_ features: Tensor) throws -> Tensor {
        try gram(features, normalizer: Float(features.shape[2] * features.shape[3]))
    }

    /// sum_l w_l mean((G(x_l) - G(t_l))^2).
    public static func loss(_ x: [Tensor], _ t: [Tensor], weights: [Float]) throws -> Tensor {
        var total = Tensor(0)
        for (l, w) in weights.enumerated() where w != 0 {
            let gx = try gramMatrix(x[l])
            var gt = try gramMatrix(t[l])
            if gt.shape != gx.shape { gt = try gt.expanded(to: gx.shape) }
            total = try total + Tensor.meanSquaredError(gx, gt) * w
        }
        return total
    }
}
