import Foundation
import GANFlowTestSupport
import ImageIO
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

@Suite struct ImageFolderDatasetStageTests {
    func folder(_ extra: String = "", path: String = "Fixtures/fashion-mnist", batch: Int = 32) throws -> any Stage {
        try buildPipeline(#""data": { "type": "dataset.images", "path": "\#(path)", "batch": \#(batch) \#(extra) }"#).stage()
    }

    @Test func servesTheFolderWithSortedClassLabels() throws {
        let stage = try folder(#", "shuffle": false"#, batch: 40)
        #expect(stage.outputs == ["images": .tensor([40, 1, 28, 28]), "labels": .tensor([40])])
        #expect((stage as! EpochSource).batchesPerEpoch == 7)
        let (images, labels) = try stage.nextBatch()
        // Sorted class folders: Ankle_boot (0) holds the first 30 files, Bag (1) the next.
        #expect(labels == [Float](repeating: 0, count: 30) + [Float](repeating: 1, count: 10))
        let first = try PNG.read(fixture("fashion-mnist/Ankle_boot/0000.png"))
        #expect(Array(images[0..<784]) == first.pixels.map { 2 * $0 - 1 })
    }

    @Test func resizesCropsAndConvertsChannels() throws {
        let resized = try folder(#", "size": 32, "channels": 3"#)
        #expect(resized.outputs["images"] == .tensor([32, 3, 32, 32]))
        #expect(try resized.nextBatch().images.count == 32 * 3 * 32 * 32)
        let photos = try folder(#", "size": 48, "fit": "centerCrop", "labels": false"#, path: "Fixtures/photos/patches", batch: 8)
        #expect(photos.outputs == ["images": .tensor([8, 3, 48, 48])])
        let (images, labels) = try photos.nextBatch()
        #expect(labels == nil)
        #expect(images.min()! >= -1 && images.max()! <= 1)
    }

    @Test func randomCropsAreReproducibleAndDifferPerEpoch() throws {
        let extra = #", "size": 24, "fit": "randomCrop", "shuffle": false"#
        let a = try folder(extra, batch: 100), b = try folder(extra + #", "prefetch": 0"#, batch: 100)
        var batches: [[Float]] = []
        for i in 0..<6 {
            let x = try a.nextBatch(), y = try b.nextBatch()
            #expect(x == y, "batch \(i): prefetch on and off agree")
            batches.append(x.images)
        }
        #expect(batches[0] != batches[3], "epoch 2 crops other offsets of the same images")
    }

    @Test func shufflesAndResumesWithTheSameNextBatch() throws {
        let a = try folder()
        for _ in 0..<10 { _ = try a.nextBatch() }  // into the second epoch (9 batches each)
        let state = try a.checkpointState()
        #expect(state.values["epoch"] == "1" && state.values["index"] == "1")
        let expected = try a.nextBatch()
        let b = try folder()
        try b.restore(state)
        #expect(try b.nextBatch() == expected)
        let c = try folder()
        var labels: [Float] = []
        for _ in 0..<9 { labels += try c.nextBatch().labels! }
        #expect(labels != labels.sorted(), "shuffled")
        #expect(Set(labels) == Set((0..<10).map(Float.init)))
    }

    @Test func badFoldersAreClearErrors() throws {
        let root = repositoryRoot
        let empty = temporaryDirectory("empty")
        defer { try? FileManager.default.removeItem(atPath: empty) }
        func problems(_ path: String, _ extra: String = "") -> [String] {
            buildProblems(#""data": { "type": "dataset.images", "path": "\#(path)", "batch": 2 \#(extra) }"#)
        }
        #expect(problems(empty) == ["$.stages.data.path: \(empty): no class subfolders: expected images in \(empty)/<class name>/*.png"])
        #expect(problems(empty, #", "labels": false"#) == ["$.stages.data.path: \(empty): no PNG images in this folder or below"])
        #expect(problems("Fixtures/broken/mixed-sizes") == [
            "$.stages.data.path: \(root)/Fixtures/broken/mixed-sizes/b/0.png: image is 32x32, expected 28x28 like \(root)/Fixtures/broken/mixed-sizes/a/0.png (set 'size' to serve one size)",
        ])
        #expect(problems("Fixtures/broken/mixed-sizes", #", "size": 28"#) == [])
    }

    /// A class folder of four good images and the broken PNGs of the fixtures.
    func corruptFolder(_ broken: [String] = ["truncated", "flipped-idat", "jpeg-named"]) throws -> String {
        let dir = temporaryDirectory("corrupt")
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/a", withIntermediateDirectories: true)
        for (i, name) in ["0000", "0023", "0028", "0039"].enumerated() {
            try fm.copyItem(atPath: fixture("fashion-mnist/Ankle_boot/\(name).png"), toPath: dir + "/a/good\(i).png")
        }
        for name in broken {
            try fm.copyItem(atPath: fixture("broken/\(name).png"), toPath: dir + "/a/\(name).png")
        }
        return dir
    }

    @Test func corruptFilesStopWithTheirNameOrAreSkippedAndCounted() throws {
        let dir = try corruptFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Without a size every header is read when the stage is built; the first problem in file order is reported.
        #expect(buildProblems(#""data": { "type": "dataset.images", "path": "\#(dir)", "batch": 2 }"#) == [
            "$.stages.data.path: \(dir)/a/good0.png: image is 28x28, expected 64x64 like \(dir)/a/flipped-idat.png (set 'size' to serve one size)",
        ])
        let notPNG = try corruptFolder(["jpeg-named"])
        defer { try? FileManager.default.removeItem(atPath: notPNG) }
        #expect(buildProblems(#""data": { "type": "dataset.images", "path": "\#(notPNG)", "batch": 2 }"#) == [
            "$.stages.data.path: \(notPNG)/a/jpeg-named.png: Not a PNG file",
        ])
        // With a size, a file whose header is fine fails when it is decoded, naming it.
        let stop = try buildPipeline(#""data": { "type": "dataset.images", "path": "\#(dir)", "batch": 7, "size": 28, "channels": 1, "shuffle": false }"#)
        #expect(throws: ImageIOError(path: "\(dir)/a/flipped-idat.png", "IDAT: invalid distance too far back")) {
            try stop.stage().nextBatch()
        }
        let skip = try buildPipeline(#""data": { "type": "dataset.images", "path": "\#(dir)", "batch": 2, "size": 28, "channels": 1, "shuffle": false, "onError": "skip" }"#)
        let stage = skip.stage() as! ImageFolderDatasetStage
        var batches: [[Float]] = []
        for _ in 0..<3 { batches.append(try stage.nextBatch().images) }
        #expect(stage.skippedFiles == [
            "\(dir)/a/flipped-idat.png": "IDAT: invalid distance too far back",
            "\(dir)/a/jpeg-named.png": "Not a PNG file",
            "\(dir)/a/truncated.png": "Read Error",
        ])
        #expect(stage.folder.finishReport() == "skipped 3 unreadable images of 7 (first: \(dir)/a/flipped-idat.png: IDAT: invalid distance too far back)")
        // The bad slots hold readable images, and the batches are what a second loader gives.
        let again = try buildPipeline(#""data": { "type": "dataset.images", "path": "\#(dir)", "batch": 2, "size": 28, "channels": 1, "shuffle": false, "onError": "skip" }"#).stage()
        for b in batches { #expect(try again.nextBatch().images == b) }
    }
}
