import NeuralNet
import PipelineGraph
import TensorRuntime

/// FID Inception v3 features (2048-d pool) and logits (1008) of generated samples and of a
/// reference dataset, for `metric.fid`, `metric.kid`, `metric.precisionrecall` and `metric.is`.
///
///     "data": { "type": "dataset.images", "path": "../Fixtures/photos/patches", "size": 64, "channels": 3, "batch": 32 },
///     "inception": { "type": "features.inception", "weights": "fid-inception.safetensors",
///                    "generator": "G", "reference": "data", "count": 256 }
///
/// The network is pytorch-fid's (`FIDInception`): images are resized to 299x299 bilinearly and
/// taken in [-1, 1], gray ones repeated to RGB. The weights are the user's: pytorch-fid's
/// `pt_inception-2015-12-05-*.pth` converted by `Scripts/convert_fid_inception.py` (GANFlow ships
/// none and downloads nothing); a missing or misshapen tensor is reported by name when the
/// pipeline is built. Outputs `fake`, `fakeLogits`, `real`, `realLogits` as `features.classifier`
/// does (see `FeatureSets`). On a CPU each image costs about 5.7 GFLOP: keep `count` modest in a
/// training run and score large sets with `ganflow score`.
public final class InceptionFeaturesStage: Stage, @unchecked Sendable {
    public static let typeName = "features.inception"
    public static let summary = "FID Inception v3 (pytorch-fid's) pool features and logits of generated samples and of a reference dataset; outputs 'fake', 'fakeLogits', 'real', 'realLogits'."
    public static let configKeys: [ConfigKey] = [
        ConfigKey("weights", .path, "pytorch-fid's FID Inception weights converted by Scripts/convert_fid_inception.py (safetensors)."),
    ] + FeatureSets.keys(count: 2048, chunk: 50)

    let network: FIDInception
    let sets: FeatureSets
    public var outputs: [String: PortType] { sets.outputs }

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let path: String
        do {
            path = try DataPaths.resolve(config.string("weights"), key: "weights", context: context)
        } catch let p as StageProblem {
            throw StageProblem(key: "weights", p.message + "; " + FIDInceptionLoader.howToGetWeights)
        }
        network = try FIDInceptionLoader.load(path)
        sets = try FeatureSets(network: network, config: config, context: context)
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] { try sets.evaluate(e) }
}

/// Loads the FID Inception of a converted weight file, for `features.inception` and `ganflow score`.
public enum FIDInceptionLoader {
    /// What a user without the weights file is told.
    public static let howToGetWeights = "features.inception needs pytorch-fid's FID Inception weights, which GANFlow does not ship or download: convert pt_inception-2015-12-05-6726825d.pth with Scripts/convert_fid_inception.py (README, \"Metrics in any image domain\")"

    /// The network of `path`; a problem is the `weights` key's, naming the file and the tensor.
    public static func load(_ path: String) throws -> FIDInception {
        do {
            return try FIDInception(weights: try SafeTensorsArchive(contentsOf: path))
        } catch let e as FIDInceptionWeightsError {
            throw StageProblem(key: "weights", e.message)
        } catch let e as SafeTensorsError {
            throw StageProblem(key: "weights", e.description)
        }
    }
}

extension FIDInception: ImageFeatureNetwork {
    public func featuresAndLogits(of images: Tensor) throws -> (features: Tensor, logits: Tensor) { try featuresAndLogits(images) }
    public func adaptedInput(_ images: Tensor) throws -> Tensor { try Self.prepared(images) }
}
