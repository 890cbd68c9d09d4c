import Foundation
import ImageIO
import NeuralNet
import PipelineGraph
import TensorRuntime

/// A fixed network that maps images [N, C, H, W] in [-1, 1] to features and class logits: the
/// feature space the `metric.*` stages and `ganflow score` compare image sets in.
public protocol ImageFeatureNetwork: AnyObject, Sendable {
    /// Features per image.
    var dimension: Int { get }
    /// Logits per image.
    var classes: Int { get }
    /// Features [N, dimension] and logits [N, classes], without gradients.
    func featuresAndLogits(of images: Tensor) throws -> (features: Tensor, logits: Tensor)
    /// `images` [N, C, H, W] in [-1, 1] as the network takes them (its own input handling, image
    /// by image), so that images of different sizes can be adapted one at a time and stacked.
    func adaptedInput(_ images: Tensor) throws -> Tensor
}

extension ImageFeatureNetwork {
    /// Features and logits of many images, `chunk` at a time, concatenated.
    public func extract(_ count: Int, chunk: Int, _ images: (Range<Int>) throws -> Tensor) throws -> (features: Tensor, logits: Tensor) {
        var features: [Tensor] = [], logits: [Tensor] = []
        var start = 0
        while start < count {
            let end = min(start + chunk, count)
            let (f, l) = try featuresAndLogits(of: try images(start..<end))
            features.append(f)
            logits.append(l)
            start = end
        }
        return (try Tensor.concat(features, axis: 0), try Tensor.concat(logits, axis: 0))
    }
}

/// What `features.classifier` and `features.inception` share: the generated and the reference
/// image sets, mapped through one network.
///
/// `fake` and `fakeLogits` hold `count` images from the generator (its moving average when it
/// keeps one), drawn from the same latents at every evaluation so that successive values measure
/// the generator, not the draw; `real` and `realLogits` the first `referenceCount` items of the
/// reference dataset (computed once). A growing generator (ProGAN) that has not reached its
/// target is measured on its images enlarged to the size its output declares (nearest, as its grids
/// show them), so that its curve is comparable over the whole run. Generated images are measured
/// as they are saved (`asSaved`: clamped to [-1, 1] and rounded to 8 bits, as `ganflow sample`
/// writes them and StyleGAN2-ADA's metrics take them), so a run's FID and `ganflow score` on its
/// samples agree, also for generators without a tanh (ProGAN, MSG-GAN, StyleGAN2).
final class FeatureSets: @unchecked Sendable {
    /// The keys both stages declare, with their own defaults for `count` and `chunk`.
    static func keys(count: Int, chunk: Int) -> [ConfigKey] {
        [
            ConfigKey("generator", .stageRef, "The generator stage to sample from."),
            ConfigKey("reference", .stageRef, "The dataset stage of real images to compare with (all its items, in order)."),
            ConfigKey("count", .int(min: 2, max: 1_000_000), default: .number(Double(count)), "Generated images per evaluation."),
            ConfigKey("referenceCount", .int(min: 2), default: .null, "Use only the first this many reference images (null: all)."),
            ConfigKey("chunk", .int(min: 1, max: 65536), default: .number(Double(chunk)), "Images per forward pass of the network."),
        ]
    }

    let network: any ImageFeatureNetwork
    let generator: any GeneratorStage
    let reference: any WholeDataset
    let count: Int
    let referenceCount: Int
    /// The side the generator's `images` output declares (its target), if known.
    let imageSide: Int?
    let chunk: Int
    let latentSeed: UInt64
    let latentStream: UInt64
    /// The stream of a noisy generator's per-image noise (`NoisyGeneratorStage`).
    let noiseStream: UInt64
    let outputs: [String: PortType]
    private let realCache = Locked<(features: Tensor, logits: Tensor)?>(nil)
    private let realLabelCache = Locked<Tensor?>(nil)

    init(network: any ImageFeatureNetwork, config: StageConfig, context: BuildContext) throws {
        self.network = network
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
        imageSide = (g.outputs["images"]?.shape).flatMap { $0.count == 4 && $0[2] == $0[3] ? $0[2] : nil }
        count = config.int("count")
        referenceCount = min(config.optionalInt("referenceCount") ?? d.itemCount, d.itemCount)
        guard referenceCount >= 2 else {
            throw StageProblem(key: "reference", "the reference dataset holds \(d.itemCount) image(s); the metrics need at least 2")
        }
        chunk = config.int("chunk")
        latentSeed = context.seed
        latentStream = stableHash("features/" + config.stageID)
        noiseStream = stableHash("features noise/" + config.stageID)
        let (dim, classes) = (network.dimension, network.classes)
        var outputs: [String: PortType] = ["fake": .tensor([count, dim]), "fakeLogits": .tensor([count, classes]),
                                           "real": .tensor([referenceCount, dim]), "realLogits": .tensor([referenceCount, classes])]
        if g.classCount != nil { outputs["fakeLabels"] = .tensor([count]) }
        if d.hasLabels { outputs["realLabels"] = .tensor([referenceCount]) }
        self.outputs = outputs
    }

    /// The class asked of generated image `i` by a conditional generator: every class in turn,
    /// so that each batch holds all classes (as training's uniform labels do) and the set is balanced.
    static func requestedClass(_ i: Int, classes: Int) -> Int { i % classes }

    /// Always in fp32, whatever the run's precision: metrics measure fp32 and bf16 runs alike
    /// (and as `ganflow score` does).
    func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        try ComputePrecision.with(.fp32) { try evaluateInFP32(e) }
    }

    private func evaluateInFP32(_ e: Evaluation) throws -> [String: PortValue] {
        var out: [String: PortValue] = [:]
        if e.outputs.contains("real") || e.outputs.contains("realLogits") || e.outputs.contains("realLabels") {
            let (features, logits) = try realFeatures()
            out["real"] = .tensor(features)
            out["realLogits"] = .tensor(logits)
            if let labels = try realLabels() { out["realLabels"] = .tensor(labels) }
        }
        if e.outputs.contains("fake") || e.outputs.contains("fakeLogits") || e.outputs.contains("fakeLabels") {
            let (features, logits) = try fakeFeatures()
            out["fake"] = .tensor(features)
            out["fakeLogits"] = .tensor(logits)
            if let k = generator.classCount {
                out["fakeLabels"] = .tensor(try Tensor(shape: [count], scalars: (0..<count).map { Float(Self.requestedClass($0, classes: k)) }))
            }
        }
        return out
    }

    func realFeatures() throws -> (features: Tensor, logits: Tensor) {
        if let cached = realCache.withLock({ $0 }) { return cached }
        var labels: [Float] = []
        let computed = try network.extract(referenceCount, chunk: chunk) { range in
            let (images, l) = try reference.items(range)
            labels += (l ?? []).map(Float.init)
            return images
        }
        if reference.hasLabels { realLabelCache.withLock { [labels] in $0 = try? Tensor(shape: [labels.count], scalars: labels) } }
        realCache.withLock { $0 = computed }
        return computed
    }

    /// The reference dataset's labels [referenceCount] (read with its images), or nil when it has none.
    func realLabels() throws -> Tensor? {
        guard reference.hasLabels else { return nil }
        if realLabelCache.withLock({ $0 }) == nil { _ = try realFeatures() }  // read beside the images
        return realLabelCache.withLock { $0 }
    }

    /// `images` in [-1, 1] as an 8-bit image file holds them: clamped, then rounded to the nearest
    /// of 256 levels.
    static func asSaved(_ images: Tensor) -> Tensor {
        let out = Tensor(uninitialized: images.shape)
        let src = images.scalars
        let dst = out.data
        for i in 0..<src.count { dst[i] = PixelRange.symmetric.fromUnit(Float(PixelRange.symmetric.byte(src[i])) / 255) }
        return out
    }

    /// Features of `count` samples from latents drawn from the same stream every time (and a
    /// noisy generator's noise from another).
    func fakeFeatures() throws -> (features: Tensor, logits: Tensor) {
        var rng = PhiloxRandom(seed: latentSeed, stream: latentStream)
        var noise = PhiloxRandom(seed: latentSeed, stream: noiseStream)
        let batch = generator.latentShape[0]
        var features: [Tensor] = [], logits: [Tensor] = []
        var made = 0
        while made < count {
            let z = Tensor(randomNormal: generator.latentShape, using: &rng)
            var images: Tensor
            let labels = try generator.classCount.map { k in
                try Tensor(shape: [batch], scalars: (made..<(made + batch)).map { Float(Self.requestedClass($0, classes: k)) })
            }
            if let g = generator as? any NoisyGeneratorStage {
                images = try ClassLabels.with(labels) {
                    try withoutGradients { try g.sampleForward(z, movingAverage: g.hasMovingAverage, truncation: 1, noise: &noise) }
                }
            } else if let labels {
                images = try generator.generate(z, labels: labels, movingAverage: generator.hasMovingAverage)
            } else {
                images = try generator.generate(z)
            }
            if let side = imageSide, images.rank == 4, images.shape[2] < side, images.shape[2] == images.shape[3],
               side % images.shape[2] == 0 {
                images = try images.upsampleNearest(factor: side / images.shape[2])
            }
            images = Self.asSaved(images)
            let take = min(batch, count - made)
            if take < batch { images = try images.sliced(axis: 0, 0..<take) }
            // The generator's batch may exceed `chunk`: pass it through the network in pieces.
            let (f, l) = try network.extract(take, chunk: chunk) { try images.sliced(axis: 0, $0) }
            features.append(f)
            logits.append(l)
            made += take
        }
        return (try Tensor.concat(features, axis: 0), try Tensor.concat(logits, axis: 0))
    }
}
