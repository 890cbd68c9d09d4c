import PipelineGraph
import TensorRuntime

/// An image that is itself trained: the canvas of style transfer.
///
///     "X": { "type": "image.parameter", "content": "content.image", "init": "content" }
///
/// Output `image` has the shape of `content` ([N, C, H, W]). It starts as the content image
/// (`content`), as uniform noise in [0, 1] (`noise`), or as the content image plus uniform noise
/// in [-noise, noise] (`contentNoise`), the three starts of the notebook. Noise comes from the
/// pipeline seed and the stage id. Values are clamped to [0, 1] in place whenever the image is
/// read, so every optimizer update is clamped before anything sees it (and line searches work
/// on the clamped point). Its one parameter, `image`, is what an optimizer's `parameters` names;
/// it is saved in checkpoints.
public final class ImageParameterStage: Stage, @unchecked Sendable {
    public static let typeName = "image.parameter"
    public static let summary = "A trainable image in [0, 1] started from the content image, noise or both; output 'image'."
    public static let configKeys: [ConfigKey] = [
        ConfigKey("content", .wire, "The image whose shape this one takes, and its start for 'content' and 'contentNoise'."),
        ConfigKey("init", .string(choices: ["content", "noise", "contentNoise"]), default: .string("content"), "How the image starts."),
        ConfigKey("noise", .number(min: 0, max: 1), default: .number(0.1), "Amplitude of the uniform noise added for 'contentNoise'."),
    ]

    public let outputs: [String: PortType]
    /// The trained image.
    public let image: Tensor
    let start: String
    let amplitude: Float
    let random: PhiloxRandom
    var initialized = false

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        guard let shape = inputs["content"]?.shape, shape.count == 4, (1...4).contains(shape[1]) else {
            throw StageProblem(key: "content", "expected images [N, C, H, W], found \(inputs["content"].map { "\($0)" } ?? "nothing")")
        }
        image = Tensor(zeros: shape).requiringGradients()
        start = config.string("init")
        amplitude = config.float("noise")
        random = PhiloxRandom(seed: context.seed, stream: stableHash("init/" + config.stageID))
        outputs = ["image": .tensor(shape)]
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        if !initialized {
            try initialize(from: try e.tensor("content"))
        }
        let p = image.data
        for i in 0..<image.count where !(p[i] >= 0 && p[i] <= 1) && !p[i].isNaN {
            p[i] = p[i] < 0 ? 0 : 1
        }
        return ["image": .tensor(e.mode == .train ? image : image.detached())]
    }

    func initialize(from content: Tensor) throws {
        var rng = random
        switch start {
        case "noise":
            try image.assign(Tensor(randomUniform: image.shape, low: 0, high: 1, using: &rng))
        case "contentNoise":
            let noise = Tensor(randomUniform: image.shape, low: -amplitude, high: amplitude, using: &rng)
            try image.assign(withoutGradients { try content + noise })
        default:
            try image.assign(content)
        }
        initialized = true
    }

    public var parameters: [(String, Tensor)] { [("image", image)] }

    public func checkpointState() throws -> StageState {
        StageState(tensors: ["image": image], values: ["initialized": initialized ? "1" : "0"])
    }

    public func restore(_ state: StageState) throws {
        guard let saved = state.tensors["image"] else { throw StageProblem("the checkpoint has no tensor 'image'") }
        guard saved.shape == image.shape else {
            throw StageProblem("tensor 'image' has shape \(describe(saved.shape)) in the checkpoint, expected \(describe(image.shape))")
        }
        try image.assign(saved)
        initialized = state.values["initialized"] == "1"
    }
}
