import NeuralNet
import PipelineGraph
import TensorRuntime

/// VGG-shaped features with fixed random weights, for when no pretrained weight file is at hand.
///
///     "F": { "type": "features.random", "inputs": { "image": "X.image", "style": "style.image" } }
///
/// The network has VGG's layout and layer names (so `layers` and the outputs are those of
/// `features.vgg`, and one can replace the other with `--set F.type=features.vgg --set
/// F.weights=...`), with Kaiming-normal weights drawn from the pipeline seed and the stage id.
/// Shallow random convolutional networks capture texture statistics (Ustyuzhaninov et al. 2016;
/// He et al. 2016), but the results differ from those of pretrained VGG: textures come through,
/// the content is kept less faithfully and the style less semantically.
public final class RandomFeaturesStage: Stage, @unchecked Sendable {
    public static let typeName = "features.random"
    public static let summary = "VGG-shaped features with fixed random weights (no weight file; results differ from pretrained VGG); outputs '<input>_<group>'."
    public static let configKeys: [ConfigKey] = FeatureStageCore.wiringKeys + [
        ConfigKey("width", .int(min: 1, max: 512), default: .number(32), "Channels of the first block (VGG has 64; 32 costs a quarter); doubles per block up to 8x."),
        ConfigKey("pooling", .string(choices: VGGFeatures.Pooling.allCases.map(\.rawValue)), default: .string("average"), "Pooling between blocks."),
    ]

    let core: FeatureStageCore
    public let outputs: [String: PortType]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        var rng = ModelKeys.initRandom(config, context)
        let network = try VGGFeatures(architecture: VGGFeatures.Architecture(rawValue: config.string("architecture"))!,
                                      pooling: VGGFeatures.Pooling(rawValue: config.string("pooling"))!,
                                      width: config.int("width"), rng: &rng)
        core = try FeatureStageCore(network: network, config: config)
        outputs = try core.outputTypes(inputs)
    }

    public var warnings: [String] {
        ["features.random uses random weights, not pretrained VGG: results differ from the notebook's (textures come through; content and style are captured less faithfully). Give a torchvision VGG19 safetensors file with --set <stage>.type=features.vgg --set <stage>.weights=FILE"]
    }

    public func outputTypes(for inputs: [String: PortType]) throws -> [String: PortType] { try core.outputTypes(inputs) }
    public func inputsNeeded(for output: String) -> [String]? { core.inputsNeeded(for: output) }
    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] { try core.evaluate(e) }
}
