import Foundation
import ImageIO
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

/// What `ganflow score` computes: the metrics of a folder of PNGs against reference images.
@Suite struct ScoreTests {
    static let idx = fixture("idx/t10k-256-images-idx3-ubyte.gz")

    @Test func imageSetsReadFoldersAndIDXFilesAsTheDatasetStagesDo() throws {
        let set = try ImageSet(Self.idx, channels: 1)
        #expect(set.count == 256)
        let p = try buildPipeline(#""data": { "type": "dataset.idx", "images": "\#(Self.idx)", "batch": 8 }"#)
        let (items, _) = try (p.stage() as! IDXDatasetStage).items(3..<9)
        #expect(try set.images(3..<9).scalars == items.scalars)
        #expect(try ImageSet(Self.idx, channels: 3).images(0..<2).shape == [2, 3, 28, 28])
        let folder = try ImageSet(fixture("fashion-mnist"), channels: 1)
        #expect(folder.count == 300)
        // Record 0 of the test set is the first ankle boot; folders are read in sorted order.
        let boot = try folder.images(0..<1)
        #expect(boot.shape == [1, 1, 28, 28])
        #expect(maxAbsDifference(boot.scalars, try set.images(0..<1).scalars) < 1e-6)
        #expect(throws: ImageIOError(path: "/no/such/dir", "no such folder or file")) { try ImageSet("/no/such/dir", channels: 1) }
        #expect(throws: ImageIOError(path: fixture("idx/t10k-256-labels-idx1-ubyte.gz"),
                                     "expected a folder of PNG images or an IDX image file (magic 0x00000803), found an IDX label file")) {
            try ImageSet(fixture("idx/t10k-256-labels-idx1-ubyte.gz"), channels: 1)
        }
    }

    @Test func imageSetsReadPreparedDatasetsInEitherColourMode() throws {
        let dir = temporaryDirectory("score-gfd")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Two RGB images of 2x2, and the same bytes' first planes as a gray dataset.
        let rgb: [UInt8] = (0..<24).map { UInt8($0 * 11) }
        try PreparedDataset.write(to: dir + "/rgb.gfd", shape: [3, 2, 2], pixels: rgb, labels: nil, classes: [], sources: ["a", "b"])
        let set = try ImageSet(dir + "/rgb.gfd", channels: 3)
        #expect(set.count == 2)
        func symmetric(_ b: UInt8) -> Float { Float(b) / 255 * 2 - 1 }
        #expect(maxAbsDifference(try set.images(1..<2).scalars, rgb[12..<24].map(symmetric)) < 1e-6)
        // Gray by BT.601 luma, as `Image.converted(toChannels:)` gives it.
        let gray = try ImageSet(dir + "/rgb.gfd", channels: 1).images(0..<2)
        #expect(gray.shape == [2, 1, 2, 2])
        var luma: [Float] = []
        for n in 0..<2 {
            for i in 0..<4 {
                let r = symmetric(rgb[n * 12 + i]), g = symmetric(rgb[n * 12 + 4 + i]), b = symmetric(rgb[n * 12 + 8 + i])
                luma.append(0.299 * r + 0.587 * g + 0.114 * b)
            }
        }
        #expect(maxAbsDifference(gray.scalars, luma) < 1e-5)
        let image = try Image(width: 2, height: 2, channels: 3, pixels: rgb[0..<12].map { Float($0) / 255 }).converted(toChannels: 1)
        #expect(maxAbsDifference(Array(gray.scalars[0..<4]), image.pixels.map { $0 * 2 - 1 }) < 1e-5)
        // A gray dataset is copied into RGB.
        try PreparedDataset.write(to: dir + "/gray.gfd", shape: [1, 2, 2], pixels: Array(rgb[0..<8]), labels: nil, classes: [], sources: ["a", "b"])
        let copied = try ImageSet(dir + "/gray.gfd", channels: 3).images(0..<2)
        #expect(copied.shape == [2, 3, 2, 2])
        #expect(try copied.sliced(axis: 1, 2..<3).scalars == ImageSet(dir + "/gray.gfd", channels: 1).images(0..<2).scalars)
        // A truncated file says so.
        let whole = try Data(contentsOf: URL(fileURLWithPath: dir + "/rgb.gfd"))
        try whole.prefix(80).write(to: URL(fileURLWithPath: dir + "/cut.gfd"))
        #expect(throws: ImageIOError.self) { try ImageSet(dir + "/cut.gfd", channels: 3) }
    }

    @Test func aSetScoredAgainstItselfAndAgainstAnotherSet() throws {
        let dir = temporaryDirectory("score")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeClassifierWeights(to: dir + "/c.safetensors")
        let extractor = try FeatureExtractor(weights: dir + "/c.safetensors", size: 28)
        let folder = try ImageSet(fixture("fashion-mnist"), channels: 1), idx = try ImageSet(Self.idx, channels: 1)
        let same = try Scorecard(images: folder, reference: folder, network: extractor, limit: nil, kidSubsets: 5, kidSubsetSize: 100)
        #expect(same.count == 300 && same.referenceCount == 300)
        #expect(abs(same.frechetDistance) < 1e-3, "\(same.frechetDistance)")
        #expect(same.precision == 1 && same.recall == 1)
        #expect(same.histogram.reduce(0, +) == 300)
        let other = try Scorecard(images: folder, reference: idx, network: extractor, limit: 200, kidSubsets: 5, kidSubsetSize: 100)
        #expect(other.count == 200 && other.referenceCount == 200)
        #expect(other.frechetDistance > same.frechetDistance)
        #expect(other.entries.map(\.0) == ["fid", "kid_mean", "kid_std", "precision", "recall", "modes", "kl"])
        #expect(other.entries.allSatisfy { $0.1?.isFinite == true })
        // KID: near 0 (within its spread over subsets) for a set against itself, clearly above it
        // against another set.
        func kid(_ s: Scorecard) -> (mean: Double, std: Double) {
            (s.entries.first { $0.0 == "kid_mean" }!.1!, s.entries.first { $0.0 == "kid_std" }!.1!)
        }
        print("ScoreTests: KID against itself \(kid(same)), against the IDX set \(kid(other))")
        #expect(abs(kid(same).mean) <= 2 * kid(same).std, "\(kid(same))")
        #expect(kid(other).mean > 2 * kid(other).std && kid(other).mean > kid(same).mean, "\(kid(other)) vs \(kid(same))")
    }

    /// Photos as people keep them differ in size: each is adapted to the network's input on its
    /// own (a batch of one, as pytorch-fid), so a folder of them scores instead of failing.
    @Test func aFolderOfPhotosOfDifferentSizesIsScoredImageByImage() throws {
        let dir = temporaryDirectory("score-sizes")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeClassifierWeights(to: dir + "/c.safetensors")
        let extractor = try FeatureExtractor(weights: dir + "/c.safetensors", size: 28)
        let photos = try ImageSet(fixture("images/folder"), channels: 1)
        #expect(photos.count == 7)
        #expect(throws: ImageIOError.self) { try photos.images(0..<photos.count) }
        let adapted = try photos.images(0..<photos.count, for: extractor)
        #expect(adapted.shape == [7, 1, 28, 28])
        // Image by image, the same as adapting each image alone.
        for i in 0..<photos.count {
            let one = try FeatureExtractor.adapted(try photos.images(i..<(i + 1)), channels: 1, size: 28)
            #expect(maxAbsDifference(one.scalars, Array(adapted.scalars[(i * 784)..<((i + 1) * 784)])) == 0)
        }
        let card = try Scorecard(images: photos, reference: photos, network: extractor, limit: nil, kidSubsets: 2, kidSubsetSize: 5)
        #expect(card.count == 7 && abs(card.frechetDistance) < 1e-3, "\(card.frechetDistance)")
    }
}
