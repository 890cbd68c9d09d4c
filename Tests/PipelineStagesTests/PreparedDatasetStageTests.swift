import Foundation
import ImageIO
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

@Suite struct PreparedDatasetStageTests {
    func prepare(_ source: String, _ options: DatasetPreparation.Options) throws -> (path: String, summary: DatasetPreparation.Summary) {
        let dir = temporaryDirectory("prepared")
        let out = dir + "/data.gfd"
        return (out, try DatasetPreparation.prepare(source: fixture(source), out: out, options: options))
    }

    @Test func preparedFileServesWhatTheFolderServes() throws {
        let (path, summary) = try prepare("images/folder", .init(size: 24))
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        #expect(summary.written == 7 && summary.shape == [3, 24, 24] && summary.classes == ["cat", "cup", "space"])
        #expect(summary.ignored == [".DS_Store", "cat/notes.txt", "cup/Thumbs.db"] && summary.unreadable.isEmpty)
        let file = try PreparedDataset(path: path)
        #expect(file.sources == ["cat/2019/IMG_0002.jpeg", "cat/IMG_0001.JPG", "cup/coffee.jpg", "cup/coffee.webp",
                                 "space/astronaut.jpg", "space/hubble.png", "space/rocket.jpg"])
        #expect(file.labels == [0, 0, 1, 1, 2, 2, 2])
        let prepared = try buildPipeline(#""data": { "type": "dataset.prepared", "path": "\#(path)", "batch": 7, "shuffle": false }"#).stage()
        let folder = try buildPipeline(#""data": { "type": "dataset.images", "path": "Fixtures/images/folder", "batch": 7, "size": 24, "channels": 3, "shuffle": false }"#).stage()
        #expect(prepared.outputs == folder.outputs)
        let (a, la) = try prepared.nextBatch(), (b, lb) = try folder.nextBatch()
        #expect(la == lb)
        // The prepared file holds bytes: within half a code of the folder's floats.
        #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1.0 / 255 + 1e-6 })
    }

    @Test func preparingTwiceGivesTheSameBytes() throws {
        let (one, _) = try prepare("images/stylegan-dataset.zip", .init(size: 16, fit: "stretch", channels: 1))
        let (two, _) = try prepare("images/stylegan-dataset.zip", .init(size: 16, fit: "stretch", channels: 1))
        defer { for p in [one, two] { try? FileManager.default.removeItem(atPath: (p as NSString).deletingLastPathComponent) } }
        #expect(try Data(contentsOf: URL(fileURLWithPath: one)) == Data(contentsOf: URL(fileURLWithPath: two)))
        #expect(try PreparedDataset(path: one).labels == [1, 0, 2])
    }

    @Test func unreadableFilesStopOrAreSkippedAndListed() throws {
        #expect(throws: ImageIOError(path: fixture("images/broken/bad-huffman.jpg"), "cannot decode JPEG: Bogus Huffman table definition")) {
            _ = try prepare("images/broken", .init(size: 8, labelled: false))
        }
        let (path, summary) = try prepare("images/broken", .init(size: 8, labelled: false, skipErrors: true))
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        #expect(summary.written == 1)  // png-named.jpg, a PNG by content
        #expect(summary.unreadable.map { ($0.path as NSString).lastPathComponent } == [
            "bad-huffman.jpg", "bomb.heic", "bomb.jpg", "bomb.png", "bomb.webp", "empty.jpg", "not-an-image.jpg", "size-mismatch.avif", "truncated.heic",
            "truncated.jpg", "truncated.webp"])
        #expect(summary.ignored == ["bad-crc.zip"])
        #expect(try PreparedDataset(path: path).sources == ["png-named.jpg"])
    }

    @Test func truncatedOrForeignFilesAreClearErrors() throws {
        let (path, _) = try prepare("images/folder", .init(size: 8))
        let dir = (path as NSString).deletingLastPathComponent
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let cut = dir + "/cut.gfd"
        try bytes.prefix(bytes.count - 10).write(to: URL(fileURLWithPath: cut))
        #expect(buildProblems(#""data": { "type": "dataset.prepared", "path": "\#(cut)", "batch": 2 }"#) == [
            "$.stages.data.path: \(cut): the header describes \(bytes.count) bytes (7 images of 3x8x8), the file holds \(bytes.count - 10) (truncated?)",
        ])
        let header = dir + "/header.gfd"
        try bytes.prefix(40).write(to: URL(fileURLWithPath: header))
        #expect(throws: ImageIOError(path: header, "not a prepared dataset: 40 bytes, shorter than the 64-byte header")) {
            _ = try PreparedDataset(path: header)
        }
        #expect(throws: ImageIOError(path: fixture("images/chelsea-baseline.jpg"), "not a prepared dataset (expected the magic GFDATA01; make one with 'ganflow dataset prepare')")) {
            _ = try PreparedDataset(path: fixture("images/chelsea-baseline.jpg"))
        }
        var forged = bytes
        forged[8] = 0xFF  // count 255 + ...: the offsets no longer follow
        let bad = dir + "/forged.gfd"
        try forged.write(to: URL(fileURLWithPath: bad))
        #expect(throws: ImageIOError(path: bad, "corrupt header: section offsets do not follow 255 images of 3x8x8")) {
            _ = try PreparedDataset(path: bad)
        }
    }
}
