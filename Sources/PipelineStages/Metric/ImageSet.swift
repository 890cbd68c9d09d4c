import Foundation
import ImageIO
import PipelineGraph
import TensorRuntime

/// Images to score from outside a pipeline: every PNG under a folder (any depth, any tool's
/// output) or the images of an IDX file (plain or .gz), served in [-1, 1].
public struct ImageSet: Sendable {
    private enum Storage: Sendable {
        case folder(ImageFolder)
        case idx(bytes: [UInt8], height: Int, width: Int)
    }

    private let storage: Storage
    public let path: String
    /// Channels the images are decoded with.
    public let channels: Int
    public let count: Int

    /// Opens `path`, a folder of PNGs or an IDX image file; PNGs are decoded with `channels`.
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
        } else {
            let file = try IDXFile(path: path)
            guard case .images(let h, let w) = file.kind else {
                throw ImageIOError(path: path, "expected a folder of PNG images or an IDX image file (magic 0x00000803), found an IDX label file")
            }
            storage = .idx(bytes: try file.readAll(), height: h, width: w)
            count = file.count
        }
    }

    /// Images `range` as [n, C, H, W] in [-1, 1]; the PNGs of a folder must share one size.
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
        }
    }
}

/// Every metric of two image sets in a classifier's feature space, as `ganflow score` reports them.
public struct Scorecard: Sendable {
    public var count: Int
    public var referenceCount: Int
    public var frechetDistance: Double
    public var kidMean: Double
    public var kidStd: Double
    public var precision: Double
    public var recall: Double
    public var modes: Int
    public var klToUniform: Double
    /// The generated images' class histogram under the classifier.
    public var histogram: [Int]

    /// Scores `images` against `reference`, through `extractor`; at most `limit` images of each.
    public init(images: ImageSet, reference: ImageSet, extractor: FeatureExtractor, limit: Int?, kidSubsets: Int = 100,
                kidSubsetSize: Int = 1000, k: Int = 3, minShare: Double = 0.01, seed: UInt64 = 0, chunk: Int = 500) throws {
        let n = min(limit ?? images.count, images.count), m = min(limit ?? reference.count, reference.count)
        let fake = try extractor.extract(n, chunk: chunk) { try images.images($0) }
        let real = try extractor.extract(m, chunk: chunk) { try reference.images($0) }
        try self.init(real: real, fake: fake, kidSubsets: kidSubsets, kidSubsetSize: kidSubsetSize, k: k, minShare: minShare, seed: seed)
    }

    /// Scores generated features and logits against real ones.
    public init(real: (features: Tensor, logits: Tensor), fake: (features: Tensor, logits: Tensor), kidSubsets: Int, kidSubsetSize: Int,
                k: Int, minShare: Double, seed: UInt64) throws {
        count = fake.features.shape[0]
        referenceCount = real.features.shape[0]
        frechetDistance = try FrechetDistance.distance(real.features, fake.features)
        (kidMean, kidStd) = try KernelDistance.kid(real.features, fake.features, subsets: kidSubsets, subsetSize: kidSubsetSize, seed: seed)
        // Equal sizes for the k-NN balls, as metric.precisionrecall does.
        var rng = PhiloxRandom(seed: seed, stream: stableHash("precision/recall subsets"))
        let size = min(count, referenceCount)
        let r = referenceCount > size ? try KernelDistance.rows(real.features, KernelDistance.sample(referenceCount, size, &rng)) : real.features
        let f = count > size ? try KernelDistance.rows(fake.features, KernelDistance.sample(count, size, &rng)) : fake.features
        (precision, recall) = try PrecisionRecall.compute(real: r, fake: f, k: k)
        let coverage = ModeCoverage(logits: fake.logits, minShare: minShare)
        modes = coverage.modes
        klToUniform = coverage.klToUniform
        histogram = coverage.histogram
    }

    /// The values under the names the metric stages log them with.
    public var entries: [(String, Double)] {
        [("fid", frechetDistance), ("kid.mean", kidMean), ("kid.std", kidStd), ("precision", precision), ("recall", recall),
         ("modes", Double(modes)), ("kl", klToUniform)]
    }
}
