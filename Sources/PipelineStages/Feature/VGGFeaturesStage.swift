import NeuralNet
import PipelineGraph
import TensorRuntime

/// Pretrained VGG16 or VGG19 features, from a safetensors file in torchvision's naming.
///
///     "F": { "type": "features.vgg", "weights": "vgg19.safetensors",
///            "inputs": { "image": "X.image", "content": "content.image", "style": "style.image" },
///            "layers": { "content": ["block4_conv2"], "style": ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"] } }
///
/// The file holds `features.<i>.weight` and `features.<i>.bias` as torchvision's `vgg16()` or
/// `vgg19()` `state_dict` names them (`classifier.*` may be there and is ignored). Images are
/// normalised with ImageNet's mean and standard deviation first. Outputs are `<input>_<group>`
/// pyramids (see `layers`); the weights are fixed.
public final class VGGFeaturesStage: Stage, @unchecked Sendable {
    public static let typeName = "features.vgg"
    public static let summary = "Pretrained VGG16/VGG19 activations (torchvision weights in safetensors) per input and layer group; outputs '<input>_<group>'."
    public static let configKeys: [ConfigKey] = FeatureStageCore.wiringKeys + [
        ConfigKey("weights", .path, "Safetensors file with torchvision's features.N.weight / features.N.bias."),
        ConfigKey("pooling", .string(choices: VGGFeatures.Pooling.allCases.map(\.rawValue)), default: .string("max"), "Pooling between blocks (VGG uses max; Gatys et al. suggest average)."),
    ]

    let core: FeatureStageCore
    public let outputs: [String: PortType]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let path = try DataPaths.resolve(config.string("weights"), key: "weights", context: context)
        let architecture = VGGFeatures.Architecture(rawValue: config.string("architecture"))!
        let network: VGGFeatures
        do {
            network = try VGGFeatures(architecture: architecture, pooling: VGGFeatures.Pooling(rawValue: config.string("pooling"))!,
                                      weights: try SafeTensorsArchive(contentsOf: path))
        } catch let e as VGGWeightsError {
            throw StageProblem(key: "weights", e.message)
        } catch let e as SafeTensorsError {
            throw StageProblem(key: "weights", e.description)
        }
        core = try FeatureStageCore(network: network, config: config)
        outputs = try core.outputTypes(inputs)
    }

    public func outputTypes(for inputs: [String: PortType]) throws -> [String: PortType] { try core.outputTypes(inputs) }
    public func inputsNeeded(for output: String) -> [String]? { core.inputsNeeded(for: output) }
    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] { try core.evaluate(e) }
}
