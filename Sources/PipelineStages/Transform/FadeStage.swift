import NeuralNet
import PipelineGraph
import TensorRuntime

/// Cross-fades real images between two resolutions while a progressive GAN fades in a new one, as
/// the official ProGAN code does to its real images (`process_reals`, "FadeLOD"):
///
///     images = lerp(upsample(avgpool(x)), x, alpha)
///
/// with 2x2 average pooling and nearest upsampling, so that at alpha 0 the discriminator sees the
/// real images exactly as the generator's faded output looks: at half the resolution, enlarged.
///
///     "fade": { "type": "transform.fade", "input": "data.images", "alpha": "grow.alpha" }
///
/// Wire the dataset's `resolution` to the schedule so `input` is already at the current
/// resolution; this stage keeps the shape. Differentiable.
public final class FadeStage: Stage, @unchecked Sendable {
    public static let typeName = "transform.fade"
    public static let summary = "Cross-fades images with their 2x-pooled, re-enlarged selves by alpha (ProGAN's real-image fade-in); output 'images'."
    public static let configKeys: [ConfigKey] = [
        ConfigKey("input", .wire, "Images [N, C, H, W] with even H and W."),
        ConfigKey("alpha", .wire, "The fade-in, a scalar in [0, 1] (schedule.progressive's 'alpha')."),
    ]

    public let outputs: [String: PortType]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        if inputs["alpha"] != .scalar { throw StageProblem(key: "alpha", "expected a scalar, found \(inputs["alpha"]!)") }
        outputs = try Self.types(inputs)
    }

    static func types(_ inputs: [String: PortType]) throws -> [String: PortType] {
        guard let s = inputs["input"]?.shape, s.count == 4, s[2] % 2 == 0, s[3] % 2 == 0 else {
            throw StageProblem(key: "input", "expected images [N, C, H, W] with even H and W, found \(inputs["input"].map { "\($0)" } ?? "nothing")")
        }
        return ["images": .tensor(s)]
    }

    public func outputTypes(for inputs: [String: PortType]) throws -> [String: PortType] { try Self.types(inputs) }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let x = try e.tensor("input")
        let alpha = ProGANKeys.alpha(e)
        guard alpha < 1 else { return ["images": .tensor(x)] }
        let low = try x.downsampleArea(factor: 2).upsampleNearest(factor: 2)
        return ["images": .tensor(try fade(low, x, alpha: alpha))]
    }
}
