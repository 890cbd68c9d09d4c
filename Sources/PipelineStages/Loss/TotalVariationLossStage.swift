import PipelineGraph
import TensorRuntime

/// Total variation: the differences between neighbouring pixels, which keeps a made image smooth.
///
///     "tvLoss": { "type": "loss.tv", "input": "X.image" }
///
/// With d_y = x[..., 1:, :] - x[..., :-1, :] and d_x = x[..., :, 1:] - x[..., :, :-1]:
/// `norm: l1` gives |d_y| + |d_x|, `norm: l2` gives d_y^2 + d_x^2, summed over every element
/// (`reduction: sum`, as the notebook and `tf.image.total_variation`) or averaged over each
/// difference tensor (`reduction: mean`). Output `loss`.
public final class TotalVariationLossStage: Stage, @unchecked Sendable {
    public static let typeName = "loss.tv"
    public static let summary = "Total variation of images (L1 or L2, summed or averaged); output 'loss'."
    public static let scalarKind = ScalarKind.objective
    public static let configKeys: [ConfigKey] = [
        ConfigKey("input", .wire, "Images [N, C, H, W]."),
        ConfigKey("norm", .string(choices: ["l1", "l2"]), default: .string("l1"), "Absolute (l1) or squared (l2) differences."),
        ConfigKey("reduction", .string(choices: ["sum", "mean"]), default: .string("sum"), "Sum over all differences, or the mean of each direction's."),
    ]

    public let outputs: [String: PortType] = ["loss": .scalar]
    let squared: Bool
    let reduction: Reduction

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        guard let s = inputs["input"]?.shape, s.count == 4, s[2] >= 2, s[3] >= 2 else {
            throw StageProblem(key: "input", "expected images [N, C, H, W] of at least 2x2, found \(inputs["input"].map { "\($0)" } ?? "nothing")")
        }
        squared = config.string("norm") == "l2"
        reduction = config.string("reduction") == "mean" ? .mean : .sum
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        ["loss": .scalar(try Self.loss(try e.tensor("input"), squared: squared, reduction: reduction))]
    }

    public static func loss(_ x: Tensor, squared: Bool, reduction: Reduction) throws -> Tensor {
        let h = x.shape[2], w = x.shape[3]
        let dy = try x.sliced(axis: 2, 1..<h) - x.sliced(axis: 2, 0..<(h - 1))
        let dx = try x.sliced(axis: 3, 1..<w) - x.sliced(axis: 3, 0..<(w - 1))
        func penalty(_ d: Tensor) -> Tensor { (squared ? d.square() : d.abs()).reduced(reduction) }
        return try penalty(dy) + penalty(dx)
    }
}
