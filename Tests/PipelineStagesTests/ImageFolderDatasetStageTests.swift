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

    @Test func mirrorFlipsPhotosAfterTheRandomCrop() throws {
        // The crop draws first, then the flip, so a crop is the same with and without the mirror.
        let extra = #", "size": 40, "fit": "randomCrop", "shuffle": false, "labels": false"#
        let plain = try folder(extra, path: "Fixtures/photos/patches", batch: 16)
        let mirrored = try folder(extra + #", "mirror": true"#, path: "Fixtures/photos/patches", batch: 16)
        var flipped = 0
        for i in 0..<2 {
            let x = try plain.nextBatch().images, m = try mirrored.nextBatch().images
            for n in 0..<16 {
                let image = try Image(width: 40, height: 40, channels: 3, pixels: Array(x[(n * 4800)..<((n + 1) * 4800)]))
                let served = Array(m[(n * 4800)..<((n + 1) * 4800)])
                let asStored = served == image.pixels, asMirror = served == image.mirrored().pixels
                #expect(asStored != asMirror, "batch \(i), image \(n): expected either the crop or its mirror")
                if asMirror { flipped += 1 }
            }
        }
        #expect((5...27).contains(flipped), "\(flipped) of 32 mirrored")
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
        #expect(problems(empty) == ["$.stages.data.path: \(empty): no class subfolders: expected images in \(empty)/<class name>/ (set \"labels\": false to read a folder without classes)"])
        #expect(problems(empty, #", "labels": false"#) == ["$.stages.data.path: \(empty): no images (jpg, jpeg, jpe, jfif, png, webp, heic, heif, hif, avif) in this folder or below"])
        #expect(problems("Fixtures/broken/mixed-sizes") == [
            "$.stages.data.path: \(root)/Fixtures/broken/mixed-sizes/b/0.png: image is 32x32, expected 28x28 like \(root)/Fixtures/broken/mixed-sizes/a/0.png (set 'size' to serve one size)",
        ])
        #expect(problems("Fixtures/broken/mixed-sizes", #", "size": 28"#) == [])
    }

    /// A class folder of four good images and broken files of the fixtures.
    func corruptFolder(_ broken: [String] = ["broken/flipped-idat.png", "images/broken/truncated.jpg", "images/broken/bad-huffman.jpg",
                                            "images/broken/empty.jpg", "images/broken/bomb.png", "images/broken/truncated.webp"]) throws -> String {
        let dir = temporaryDirectory("corrupt")
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/a", withIntermediateDirectories: true)
        for (i, name) in ["0000", "0023", "0028", "0039"].enumerated() {
            try fm.copyItem(atPath: fixture("fashion-mnist/Ankle_boot/\(name).png"), toPath: dir + "/a/good\(i).png")
        }
        for name in broken {
            try fm.copyItem(atPath: fixture(name), toPath: dir + "/a/" + (name as NSString).lastPathComponent)
        }
        return dir
    }

    @Test func corruptFilesStopWithTheirNameOrAreSkippedAndListed() throws {
        let dir = try corruptFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Without a size every header is read when the stage is built; the first problem in file order is reported.
        #expect(buildProblems(#""data": { "type": "dataset.images", "path": "\#(dir)", "batch": 2 }"#) == [
            "$.stages.data.path: \(dir)/a/bad-huffman.jpg: cannot decode JPEG: Bogus Huffman table definition",
        ])
        // With a size, a file whose header is fine fails when it is decoded, naming it.
        let late = try corruptFolder(["broken/flipped-idat.png", "images/broken/truncated.jpg"])
        defer { try? FileManager.default.removeItem(atPath: late) }
        let stop = try buildPipeline(#""data": { "type": "dataset.images", "path": "\#(late)", "batch": 6, "size": 28, "channels": 1, "shuffle": false }"#)
        #expect(throws: ImageIOError(path: "\(late)/a/flipped-idat.png", "IDAT: invalid distance too far back")) {
            try stop.stage().nextBatch()
        }
        let skip = try buildPipeline(#""data": { "type": "dataset.images", "path": "\#(dir)", "batch": 2, "size": 28, "channels": 1, "shuffle": false, "onError": "skip" }"#)
        let stage = skip.stage() as! ImageFolderDatasetStage
        var batches: [[Float]] = []
        for _ in 0..<5 { batches.append(try stage.nextBatch().images) }
        let reasons = [
            "bad-huffman.jpg": "cannot decode JPEG: Bogus Huffman table definition",
            "bomb.png": "the header declares 100000x100000 pixels, more than the limit of 89478485 (a decompression bomb?); raise the limit ('maxPixels', --max-pixels) to read it",
            "empty.jpg": "empty file (0 bytes): not an image",
            "flipped-idat.png": "IDAT: invalid distance too far back",
            "truncated.jpg": "damaged JPEG data: Premature end of JPEG file",
            "truncated.webp": "cannot decode WebP: the image data is corrupt or truncated",
        ]
        #expect(stage.skippedFiles == Dictionary(uniqueKeysWithValues: reasons.map { ("\(dir)/a/\($0)", $1) }))
        #expect(stage.folder.finishReport() == (["skipped 6 unreadable images of 10:"] + reasons.keys.sorted().map { "  \(dir)/a/\($0): \(reasons[$0]!)" }).joined(separator: "\n"))
        // The bad slots hold readable images, and the batches are what a second loader gives.
        let again = try buildPipeline(#""data": { "type": "dataset.images", "path": "\#(dir)", "batch": 2, "size": 28, "channels": 1, "shuffle": false, "onError": "skip" }"#).stage()
        for b in batches { #expect(try again.nextBatch().images == b) }
    }

    @Test func photosOfAnySizeAndFormatServeAtOneSize() throws {
        for fit in ["resize", "stretch", "centerCrop", "randomCrop"] {
            let stage = try buildPipeline(#""data": { "type": "dataset.images", "path": "Fixtures/images/folder", "batch": 7, "size": 24, "channels": 3, "fit": "\#(fit)", "shuffle": false }"#).stage()
            let (images, labels) = try stage.nextBatch()
            #expect(images.count == 7 * 3 * 24 * 24 && labels == [0, 0, 1, 1, 2, 2, 2], "\(fit)")
            #expect(images.min()! >= -1 && images.max()! <= 1)
        }
        let gray = try buildPipeline(#""data": { "type": "dataset.images", "path": "Fixtures/images/folder", "batch": 7, "size": 16, "channels": 1, "labels": false }"#).stage()
        #expect(gray.outputs == ["images": .tensor([7, 1, 16, 16])])
        let padded = try buildPipeline(#""data": { "type": "dataset.images", "path": "Fixtures/images/folder/space", "batch": 3, "size": 130, "fit": "pad", "channels": 3, "labels": false, "shuffle": false }"#).stage()
        let (p, _) = try padded.nextBatch()
        #expect(p[0] == -1, "the corner of a padded image is the black border")
        let stage = try buildPipeline(#""data": { "type": "dataset.images", "path": "Fixtures/images/folder", "batch": 7, "size": 16 }"#).stage() as! ImageFolderDatasetStage
        #expect(stage.folder.finishReport() == "ignored 3 files that are not images by extension: .DS_Store, cat/notes.txt, cup/Thumbs.db")
    }

    @Test func resizeServesTheAreaAverageOfTheScaledDecode() throws {
        // chelsea-baseline.jpg is 160x106: at size 24 it is decoded at 1/4 (40x27), then area-averaged.
        let stage = try buildPipeline(#""data": { "type": "dataset.images", "path": "Fixtures/images/folder/cat", "batch": 2, "size": 24, "labels": false, "shuffle": false }"#).stage()
        let (images, _) = try stage.nextBatch()
        let quarter = try ImageFile.read(path: fixture("images/chelsea-baseline.jpg"), options: ImageDecodeOptions(atLeast: (24, 24)))
        #expect(quarter.width == 40)
        let expected = try quarter.resized(width: 36, height: 24).centerCropped(width: 24, height: 24)
        #expect(Array(images[(3 * 576)..<(6 * 576)]) == expected.pixels.map { 2 * $0 - 1 })
    }

    @Test func zipArchivesServeWithDatasetJSONLabels() throws {
        let stage = try buildPipeline(#""data": { "type": "dataset.images", "path": "Fixtures/images/stylegan-dataset.zip", "batch": 3, "size": 16, "channels": 3, "shuffle": false }"#).stage()
        #expect(try stage.nextBatch().labels == [1, 0, 2])
        let bad = try buildPipeline(#""data": { "type": "dataset.images", "path": "Fixtures/images/broken/bad-crc.zip", "batch": 3, "size": 16, "channels": 3, "shuffle": false, "labels": false }"#).stage()
        #expect(throws: ImageIOError(path: fixture("images/broken/bad-crc.zip"), "entry 'img/00000/img00000001.webp': CRC error")) {
            try bad.nextBatch()
        }
    }
}
