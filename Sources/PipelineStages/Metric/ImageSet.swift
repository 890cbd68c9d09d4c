import Foundation
import ImageIO
import PipelineGraph
import TensorRuntime

/// Images to score from outside a pipeline: every image under a folder or ZIP (JPEG, PNG, WebP,
/// any depth, any tool's output, any sizes), the images of an IDX file (plain or .gz) or of a
/// prepared dataset (`.gfd`, `ganflow dataset prepare`), served in [-1, 1].
public struct ImageSet: Sendable {
    private enum Storage: Sendable {
        case folder(ImageFolder)
        case idx(bytes: [UInt8], height: Int, width: Int)
        case prepared(PreparedDataset)
    }

    private let storage: Storage
    public let path: String
    /// Channels the images are decoded with.
    public let channels: Int
    public let count: Int

    /// Opens `path`: a folder or ZIP of images (decoded with `channels`), a prepared dataset or an
    /// IDX image file (their images converted to `channels`).
    public init(_ path: String, channels: Int) throws {
        self.path = path
        self.channels = channels
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ImageIOError(path: path, "no such folder or file")
        }
        if isDirectory.boolValue || ZipArchive.isArchive(path) {
            let folder = try ImageFolder(root: path, labelled: false)
            storage = .folder(folder)
            count = folder.count
        } else if PreparedDataset.hasMagic(path) {
            let file = try PreparedDataset(path: path)
            storage = .prepared(file)
            count = file.count
        } else {
            let file = try IDXFile(path: path)
            guard case .images(let h, let w) = file.kind else {
                throw ImageIOError(path: path, "expected a folder of PNG images or an IDX image file (magic 0x00000803), found an IDX label file")
            }
            storage = .idx(bytes: try file.readAll(), height: h, width: w)
            count = file.count
        }
    }

    /// Images `range` as `network` takes them. The images of a folder may differ in size (photos
    /// as people keep them): each is decoded and adapted to the network's input on its own, as
    /// pytorch-fid does with a batch of one, then they are stacked.
    public func images(_ range: Range<Int>, for network: any ImageFeatureNetwork) throws -> Tensor {
        guard case .folder(let folder) = storage else { return try network.adaptedInput(images(range)) }
        return try Tensor.concat(range.map { try network.adaptedInput(folder.batch([$0], channels: channels).images) }, axis: 0)
    }

    /// Images `range` as [n, C, H, W] in [-1, 1]; the images of a folder must share one size.
    public func images(_ range: Range<Int>) throws -> Tensor {
        switch storage {
        case .folder(let folder):
            return try folder.batch(Array(range), channels: channels).images
        case .idx(let bytes, let h, let w):
            let size = h * w
            let slice = Array(bytes[(range.lowerBound * size)..<(range.upperBound * size)])
            let gray = try Image.tensor(bytes: slice, shape: [range.count, 1, h, w], range: .symmetric)
            guard channels > 1 else { return gray }
            return try Tensor.concat([Tensor](repeating: gray, count: channels), axis: 1)
        case .prepared(let file):
            // Each image converted to `channels` as the dataset stages convert it.
            let (c, h, w) = (file.shape[0], file.shape[1], file.shape[2])
            let size = c * h * w
            var values: [Float] = []
            values.reserveCapacity(range.count * channels * h * w)
            for i in range {
                let pixels = file.pixels[(i * size)..<((i + 1) * size)].map { Float($0) / 255 }
                let image = try Image(width: w, height: h, channels: c, pixels: pixels).converted(toChannels: channels)
                values += image.pixels.map { PixelRange.symmetric.fromUnit($0) }
            }
            return try Tensor(shape: [range.count, channels, h, w], scalars: values)
        }
    }
}

/// What generated images are scored against: the features of reference images, or only the
/// Gaussian statistics of some (a `.npz` of `mu` and `sigma`, as pytorch-fid saves them), which
/// give the Frechet distance but not KID or precision/recall.
public enum ScoreReference: Sendable {
    case features(features: Tensor, logits: Tensor)
    case statistics(GaussianStatistics, count: Int?)
}

/// Every metric of two image sets in a network's feature space, as `ganflow score` reports them.
public struct Scorecard: Sendable {
    public var count: Int
    /// Reference images (nil for statistics that do not say).
    public var referenceCount: Int?
    public var frechetDistance: Double
    /// KID, precision and recall need the reference features: nil against statistics.
    public var kidMean: Double?
    public var kidStd: Double?
    public var precision: Double?
    public var recall: Double?
    public var modes: Int
    public var klToUniform: Double
    /// The generated images' class histogram under the network.
    public var histogram: [Int]
    /// The Inception Score of the generated images (when asked for: it means something only
    /// with Inception's 1008 ImageNet logits).
    public var inceptionScore: (mean: Double, std: Double)?

    /// Scores `images` against `reference`, through `network`; at most `limit` images of each.
    public init(images: ImageSet, reference: ImageSet, network: any ImageFeatureNetwork, limit: Int?, kidSubsets: Int = 100,
                kidSubsetSize: Int = 1000, k: Int = 3, minShare: Double = 0.01, seed: UInt64 = 0, chunk: Int = 500,
                inceptionScore: Bool = false) throws {
        let m = min(limit ?? reference.count, reference.count)
        let real = try network.extract(m, chunk: chunk) { try reference.images($0, for: network) }
        try self.init(images: images, reference: .features(features: real.features, logits: real.logits), network: network, limit: limit,
                      kidSubsets: kidSubsets, kidSubsetSize: kidSubsetSize, k: k, minShare: minShare, seed: seed, chunk: chunk,
                      inceptionScore: inceptionScore)
    }

    /// Scores `images` against reference features or statistics.
    public init(images: ImageSet, reference: ScoreReference, network: any ImageFeatureNetwork, limit: Int?, kidSubsets: Int = 100,
                kidSubsetSize: Int = 1000, k: Int = 3, minShare: Double = 0.01, seed: UInt64 = 0, chunk: Int = 500,
                inceptionScore: Bool = false) throws {
        let n = min(limit ?? images.count, images.count)
        let fake = try network.extract(n, chunk: chunk) { try images.images($0, for: network) }
        try self.init(real: reference, fake: fake, kidSubsets: kidSubsets, kidSubsetSize: kidSubsetSize, k: k, minShare: minShare, seed: seed,
                      inceptionScore: inceptionScore)
    }

    /// Scores generated features and logits against real ones.
    public init(real: (features: Tensor, logits: Tensor), fake: (features: Tensor, logits: Tensor), kidSubsets: Int, kidSubsetSize: Int,
                k: Int, minShare: Double, seed: UInt64) throws {
        try self.init(real: .features(features: real.features, logits: real.logits), fake: fake, kidSubsets: kidSubsets,
                      kidSubsetSize: kidSubsetSize, k: k, minShare: minShare, seed: seed, inceptionScore: false)
    }

    public init(real: ScoreReference, fake: (features: Tensor, logits: Tensor), kidSubsets: Int, kidSubsetSize: Int,
                k: Int, minShare: Double, seed: UInt64, inceptionScore: Bool) throws {
        count = fake.features.shape[0]
        let fakeStatistics = try GaussianStatistics(features: fake.features)
        switch real {
        case .statistics(let statistics, let n):
            referenceCount = n
            frechetDistance = try FrechetDistance.distance(statistics, fakeStatistics)
        case .features(let realFeatures, _):
            let referenceCount = realFeatures.shape[0]
            self.referenceCount = referenceCount
            frechetDistance = try FrechetDistance.distance(try GaussianStatistics(features: realFeatures), fakeStatistics)
            (kidMean, kidStd) = try KernelDistance.kid(realFeatures, fake.features, subsets: kidSubsets, subsetSize: kidSubsetSize, seed: seed)
            // Equal sizes for the k-NN balls, as metric.precisionrecall does.
            var rng = PhiloxRandom(seed: seed, stream: stableHash("precision/recall subsets"))
            let size = min(count, referenceCount)
            let r = referenceCount > size ? try KernelDistance.rows(realFeatures, KernelDistance.sample(referenceCount, size, &rng)) : realFeatures
            let f = count > size ? try KernelDistance.rows(fake.features, KernelDistance.sample(count, size, &rng)) : fake.features
            (precision, recall) = try PrecisionRecall.compute(real: r, fake: f, k: k)
        }
        let coverage = ModeCoverage(logits: fake.logits, minShare: minShare)
        modes = coverage.modes
        klToUniform = coverage.klToUniform
        histogram = coverage.histogram
        if inceptionScore {
            self.inceptionScore = try InceptionScore.score(logits: fake.logits, splits: min(10, count), seed: seed)
        }
    }

    /// The values by name (`ganflow score`'s table and JSON keys); nil where not computed.
    public var entries: [(String, Double?)] {
        var out: [(String, Double?)] = [("fid", frechetDistance), ("kid_mean", kidMean), ("kid_std", kidStd), ("precision", precision),
                                        ("recall", recall)]
        if let inceptionScore {
            out += [("is_mean", inceptionScore.mean), ("is_std", inceptionScore.std)]
        } else {
            out += [("modes", Double(modes)), ("kl", klToUniform)]
        }
        return out
    }
}
