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
/// generator (its moving average when it keeps one), drawn from the same latents at every
/// evaluation so that successive values measure the generator, not the draw; and `real`,
/// `realLogits` for the items of the reference dataset (computed once). It runs only when a metric
/// that reads it runs.
public final class ClassifierFeaturesStage: Stage, @unchecked Sendable {
    public static let typeName = "features.classifier"
    public static let summary = "Classifier features (penultimate layer) and logits of generated samples and of a reference dataset; outputs 'fake', 'fakeLogits', 'real', 'realLogits'."
    public static let configKeys: [ConfigKey] = [
        ConfigKey("weights", .path, "The classifier's weights: a classifier.cnn exported by `ganflow export RUN --stage C` (safetensors)."),
        ConfigKey("generator", .stageRef, "The generator stage to sample from."),
        ConfigKey("reference", .stageRef, "The dataset stage of real images to compare with (all its items, in order)."),
        ConfigKey("count", .int(min: 2, max: 1_000_000), default: .number(2048), "Generated images per evaluation."),
        ConfigKey("referenceCount", .int(min: 2), default: .null, "Use only the first this many reference images (null: all)."),
        ConfigKey("size", .int(min: 8, max: 4096), default: .number(28), "Side of the classifier's input: larger images are centre-cropped to it, smaller ones padded."),
        ConfigKey("chunk", .int(min: 1, max: 65536), default: .number(500), "Images per forward pass of the classifier."),
    ]

    public let outputs: [String: PortType]
    let extractor: FeatureExtractor
    let generator: any GeneratorStage
    let reference: any WholeDataset
    let count: Int
    let referenceCount: Int
    let chunk: Int
    let latentSeed: UInt64
    let latentStream: UInt64
    private let realCache = Locked<(features: Tensor, logits: Tensor)?>(nil)

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let path = try DataPaths.resolve(config.string("weights"), key: "weights", context: context)
        extractor = try FeatureExtractor(weights: path, size: config.int("size"))
        guard let g = context.stage(config.string("generator")) as? any GeneratorStage else {
            throw StageProblem(key: "generator", "stage '\(config.string("generator"))' is not a generator")
        }
        guard let d = context.stage(config.string("reference")) as? any WholeDataset else {
            throw StageProblem(key: "reference", "stage '\(config.string("reference"))' is not a dataset")
        }
        if let images = g.outputs.values.compactMap(\.shape).first, images.count != 4 {
            throw StageProblem(key: "generator", "expected a generator of images [N, C, H, W], found \(describe(images))")
        }
        generator = g
        reference = d
        count = config.int("count")
        referenceCount = min(config.optionalInt("referenceCount") ?? d.itemCount, d.itemCount)
        guard referenceCount >= 2 else {
            throw StageProblem(key: "reference", "the reference dataset holds \(d.itemCount) image(s); the metrics need at least 2")
        }
        chunk = config.int("chunk")
        latentSeed = context.seed
        latentStream = stableHash("features/" + config.stageID)
        let (dim, classes) = (extractor.dimension, extractor.classes)
        outputs = ["fake": .tensor([count, dim]), "fakeLogits": .tensor([count, classes]),
                   "real": .tensor([referenceCount, dim]), "realLogits": .tensor([referenceCount, classes])]
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        var out: [String: PortValue] = [:]
        if e.outputs.contains("real") || e.outputs.contains("realLogits") {
            let (features, logits) = try realFeatures()
            out["real"] = .tensor(features)
            out["realLogits"] = .tensor(logits)
        }
        if e.outputs.contains("fake") || e.outputs.contains("fakeLogits") {
            let (features, logits) = try fakeFeatures()
            out["fake"] = .tensor(features)
            out["fakeLogits"] = .tensor(logits)
        }
        return out
    }

    func realFeatures() throws -> (features: Tensor, logits: Tensor) {
        if let cached = realCache.withLock({ $0 }) { return cached }
        let computed = try extractor.extract(referenceCount, chunk: chunk) { try reference.items($0).images }
        realCache.withLock { $0 = computed }
        return computed
    }

    /// Features of `count` samples from latents drawn from the same stream every time.
    func fakeFeatures() throws -> (features: Tensor, logits: Tensor) {
        var rng = PhiloxRandom(seed: latentSeed, stream: latentStream)
        let batch = generator.latentShape[0]
        var features: [Tensor] = [], logits: [Tensor] = []
        var made = 0
        while made < count {
            var images = try generator.generate(Tensor(randomNormal: generator.latentShape, using: &rng))
            let take = min(batch, count - made)
            if take < batch { images = try images.sliced(axis: 0, 0..<take) }
            let (f, l) = try extractor(images)
            features.append(f)
            logits.append(l)
            made += take
        }
        return (try Tensor.concat(features, axis: 0), try Tensor.concat(logits, axis: 0))
    }
}
