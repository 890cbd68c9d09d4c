import Foundation
import PipelineGraph
import TensorRuntime

/// Features of generated and real images in a trained classifier's penultimate layer, for the
/// `metric.*` stages that compare the two sets.
///
///     "test": { "type": "dataset.idx", "images": ".../t10k-images-idx3-ubyte.gz", "labels": ".../t10k-labels-idx1-ubyte.gz" },
///     "features": { "type": "features.classifier", "weights": "../Fixtures/models/fashion-classifier.safetensors",
///                   "generator": "G", "reference": "test", "count": 2048 }
///
/// Outputs `fake` [count, d] and `fakeLogits` [count, classes] for `count` images from the
/// generator and `real`, `realLogits` for the reference dataset (see `FeatureSets`). It runs only
/// when a metric that reads it runs.
public final class ClassifierFeaturesStage: Stage, @unchecked Sendable {
    public static let typeName = "features.classifier"
    public static let summary = "Classifier features (penultimate layer) and logits of generated samples and of a reference dataset; outputs 'fake', 'fakeLogits', 'real', 'realLogits' (and 'fakeLabels', 'realLabels' for a conditional generator, a labelled reference)."
    public static let configKeys: [ConfigKey] = [
        ConfigKey("weights", .path, "The classifier's weights: a classifier.cnn exported by `ganflow export RUN --stage C` (safetensors)."),
        ConfigKey("size", .int(min: 8, max: 4096), default: .number(28), "Side of the classifier's input: larger images are centre-cropped to it, smaller ones padded."),
    ] + FeatureSets.keys(count: 2048, chunk: 500)

    let extractor: FeatureExtractor
    let sets: FeatureSets
    public var outputs: [String: PortType] { sets.outputs }

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let path = try DataPaths.resolve(config.string("weights"), key: "weights", context: context)
        extractor = try FeatureExtractor(weights: path, size: config.int("size"))
        sets = try FeatureSets(network: extractor, config: config, context: context)
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] { try sets.evaluate(e) }
    func realFeatures() throws -> (features: Tensor, logits: Tensor) { try sets.realFeatures() }
    func fakeFeatures() throws -> (features: Tensor, logits: Tensor) { try sets.fakeFeatures() }
}
