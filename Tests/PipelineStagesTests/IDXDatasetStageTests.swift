import Foundation
import ImageIO
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

@Suite struct IDXDatasetStageTests {
    static let images = "Fixtures/idx/t10k-256-images-idx3-ubyte.gz"
    static let labels = "Fixtures/idx/t10k-256-labels-idx1-ubyte.gz"

    func idx(_ extra: String = "", seed: Int = 7) throws -> any Stage {
        try buildPipeline("""
        "data": { "type": "dataset.idx", "images": "\(Self.images)", "labels": "\(Self.labels)", "batch": 64 \(extra) }
        """, seed: seed).stage()
    }

    @Test func servesPaddedImagesInRangeWithLabels() throws {
        let stage = try idx(#", "size": 32, "fit": "pad", "shuffle": false"#)
        #expect(stage.outputs == ["images": .tensor([64, 1, 32, 32]), "labels": .tensor([64])])
        #expect((stage as! EpochSource).batchesPerEpoch == 4)
        let (images, labels) = try stage.nextBatch()
        let raw = try IDXFile.loadImages(fixture("idx/t10k-256-images-idx3-ubyte.gz"))
        let rawLabels = try IDXFile.loadLabels(fixture("idx/t10k-256-labels-idx1-ubyte.gz"))
        #expect(labels == rawLabels[0..<64].map(Float.init))
        // Image 5: a 2-pixel black (-1) border around the record's bytes mapped to 2 * b / 255 - 1.
        let item = Array(images[(5 * 1024)..<(6 * 1024)])
        for y in 0..<32 {
            for x in 0..<32 {
                let inside = (2..<30).contains(y) && (2..<30).contains(x)
                let expected = inside ? 2 * Float(raw.images[5 * 784 + (y - 2) * 28 + x - 2]) / 255 - 1 : -1
                #expect(item[y * 32 + x] == expected)
            }
        }
        #expect(images.min()! >= -1 && images.max()! <= 1)
    }

    @Test func resizesAndConvertsChannels() throws {
        let stage = try idx(#", "size": 16, "channels": 3"#)
        #expect(stage.outputs["images"] == .tensor([64, 3, 16, 16]))
        let (images, _) = try stage.nextBatch()
        // Gray replicated into three equal planes.
        #expect(Array(images[0..<256]) == Array(images[256..<512]))
        #expect(Array(images[0..<256]) == Array(images[512..<768]))
    }

    @Test func shufflesReproduciblyAndCoversEveryImageEachEpoch() throws {
        let a = try idx(), b = try idx(), other = try idx(seed: 8)
        var epochs: [[Float]] = [[], []]
        var sameAsOtherSeed = true
        for i in 0..<8 {
            let x = try a.nextBatch(), y = try b.nextBatch(), z = try other.nextBatch()
            #expect(x.images == y.images && x.labels == y.labels, "batch \(i)")
            if x.images != z.images { sameAsOtherSeed = false }
            epochs[i / 4] += x.labels!
        }
        #expect(!sameAsOtherSeed)
        let rawLabels = try IDXFile.loadLabels(fixture("idx/t10k-256-labels-idx1-ubyte.gz")).map(Float.init)
        #expect(epochs[0].sorted() == rawLabels.sorted())
        #expect(epochs[1].sorted() == rawLabels.sorted())
        #expect(epochs[0] != epochs[1], "each epoch has its own order")
        #expect(epochs[0] != rawLabels)
    }

    @Test func resumesWithTheSameNextBatch() throws {
        for taken in [3, 4, 6] {
            let a = try idx()
            for _ in 0..<taken { _ = try a.nextBatch() }
            let state = try a.checkpointState()
            let expected = try a.nextBatch()
            let b = try idx()
            try b.restore(state)
            #expect(try b.nextBatch() == expected, "after \(taken) batches")
        }
    }

    @Test func refusesACheckpointOfAnotherDataset() throws {
        let a = try idx()
        var state = try a.checkpointState()
        state.values["items"] = "300"
        #expect(throws: StageProblem.self) { try a.restore(state) }
        do { try a.restore(state) } catch let p as StageProblem {
            #expect(p.message == "the checkpoint's dataset 'data' held 300 images; this one holds 256")
        }
    }

    @Test func prefetchGivesTheSameBatchesAsDecodingWhenAsked() throws {
        let on = try idx(#", "size": 20, "fit": "randomCrop", "prefetch": 2"#)
        let off = try idx(#", "size": 20, "fit": "randomCrop", "prefetch": 0"#)
        for i in 0..<9 {
            #expect(try on.nextBatch() == off.nextBatch(), "batch \(i)")
        }
        // A restore in the middle restarts the producer at the restored position.
        let state = try off.checkpointState()
        _ = try on.nextBatch()
        try on.restore(state)
        #expect(try on.nextBatch() == off.nextBatch())
        try on.finish()
    }

    @Test func mirrorFlipsHalfTheImagesPerEpochAsEveryPathServesThem() throws {
        // Unshuffled, so batch i of every epoch holds the same records.
        let plain = try idx(#", "shuffle": false"#)
        let mirrored = try idx(#", "shuffle": false, "mirror": true"#), again = try idx(#", "shuffle": false, "mirror": true"#)
        // Three channels take the path that decodes each image and applies the preprocessing;
        // one channel, the table lookup of bytes served as stored. Both draw the same flips.
        let rgb = try idx(#", "shuffle": false, "mirror": true, "channels": 3"#)
        var flips: [[Bool]] = []
        for i in 0..<8 {
            let x = try plain.nextBatch().images, m = try mirrored.nextBatch().images
            #expect(try again.nextBatch().images == m, "batch \(i): the flips are a function of the position")
            let c = try rgb.nextBatch().images
            var batchFlips: [Bool] = []
            for n in 0..<64 {
                let image = Array(x[(n * 784)..<((n + 1) * 784)]), served = Array(m[(n * 784)..<((n + 1) * 784)])
                let flipped: [Float] = (0..<784).map { (k: Int) -> Float in image[k - k % 28 + 27 - k % 28] }
                let asStored = served == image, asMirror = served == flipped
                #expect(asStored || asMirror, "batch \(i), image \(n): neither the image nor its mirror")
                batchFlips.append(!asStored)
                let agrees = Array(c[(n * 3 * 784)..<(n * 3 * 784 + 784)]) == served
                #expect(agrees, "batch \(i), image \(n): the decoding path flips otherwise")
            }
            if i % 4 == 0 { flips.append(batchFlips) }
        }
        let count = flips[0].filter { $0 }.count
        #expect((16...48).contains(count), "\(count) of 64 mirrored")
        #expect(flips[0] != flips[1], "each epoch draws its own flips")
    }

    @Test func streamingFromDiskGivesTheSameBatches() throws {
        let memory = try idx(#", "size": 32, "fit": "pad""#)
        let disk = try idx(#", "size": 32, "fit": "pad", "streamAbove": 0"#)
        guard case .disk = ((disk as! IDXDatasetStage).core.loader.source as! ByteRecordSource).storage else {
            Issue.record("streamAbove 0 should read from disk")
            return
        }
        for i in 0..<6 {
            #expect(try memory.nextBatch() == disk.nextBatch(), "batch \(i)")
        }
    }

    @Test func sampleEvaluationsGetTheFirstUnshuffledBatchAndDoNotAdvance() throws {
        let shuffled = try idx()
        let plain = try idx(#", "shuffle": false"#)
        let first = try plain.nextBatch()
        let fixed = try shuffled.nextBatch(mode: .sample)
        #expect(fixed == first)
        #expect(try shuffled.nextBatch(mode: .sample) == first)
        let fresh = try idx()
        #expect(try shuffled.nextBatch() == fresh.nextBatch(), "sampling did not move the position")
    }

    @Test func servesALowerResolutionFromAnIntegerInput() throws {
        let p = try buildPipeline("""
        "res": { "type": "test.integer", "value": 8 },
        "data": { "type": "dataset.idx", "images": "\(Self.images)", "size": 32, "fit": "pad", "resolution": "res.value", "shuffle": false }
        """)
        let full = try idx(#", "size": 32, "fit": "pad", "shuffle": false"#).run(["images"])["images"]!.tensor!
        let low = try p.stage().run(["images"], inputs: ["resolution": .integer(8)])["images"]!.tensor!
        #expect(low.shape == [64, 1, 8, 8])
        #expect(low.scalars == (try full.avgPool2d(kernel: 4)).scalars)
        #expect(throws: StageProblem.self) { try p.stage().run(["images"], inputs: ["resolution": .integer(12)]) }
    }

    @Test func pyramidOutputHoldsEveryScale() throws {
        let stage = try idx(#", "size": 32, "fit": "pad", "pyramid": 4, "shuffle": false"#)
        #expect(stage.outputs["pyramid"] == .pyramid([[64, 1, 4, 4], [64, 1, 8, 8], [64, 1, 16, 16], [64, 1, 32, 32]]))
        guard case .pyramid(let levels)? = try stage.run(["images", "pyramid"])["pyramid"] else {
            Issue.record("no pyramid")
            return
        }
        #expect(levels.map(\.shape) == [[64, 1, 4, 4], [64, 1, 8, 8], [64, 1, 16, 16], [64, 1, 32, 32]])
        let x = levels[3]
        #expect(levels[0].scalars.indices.allSatisfy { abs(levels[0].scalars[$0] - (try! x.avgPool2d(kernel: 8)).scalars[$0]) < 1e-5 })
        #expect(buildProblems(#""data": { "type": "dataset.idx", "images": "\#(Self.images)", "pyramid": 4 }"#)
                == ["$.stages.data.pyramid: cannot halve 28 down to 4: 7 is odd (use sizes that are a power of two times 4)"])
    }

    @Test func badFilesAreClearErrorsNamingTheFile() {
        let root = repositoryRoot
        func problems(_ images: String, labels: String? = nil, extra: String = "") -> [String] {
            buildProblems(#""data": { "type": "dataset.idx", "images": "\#(images)""# + (labels.map { #", "labels": "\#($0)""# } ?? "") + extra + " }")
        }
        #expect(problems("Fixtures/broken/wrong-magic-idx3-ubyte") == [
            "$.stages.data.images: \(root)/Fixtures/broken/wrong-magic-idx3-ubyte: magic number 0x00000804 is neither an IDX image file (0x00000803) nor a label file (0x00000801)",
        ])
        #expect(problems("Fixtures/broken/short-images-idx3-ubyte") == [
            "$.stages.data.images: \(root)/Fixtures/broken/short-images-idx3-ubyte: data ends in record 12 of 16: the header declares 16 images of 28x28 bytes (12544 bytes), the file holds 9800; record 12 has 392 of 784 bytes",
        ])
        #expect(problems("Fixtures/broken/truncated-images-idx3-ubyte.gz") == [
            "$.stages.data.images: \(root)/Fixtures/broken/truncated-images-idx3-ubyte.gz: data ends in record 153 of 256 (unexpected end of file): the header declares 256 images of 28x28 bytes (200704 bytes), the file holds 120582; record 153 has 630 of 784 bytes",
        ])
        #expect(problems(Self.images, labels: "Fixtures/broken/200-labels-idx1-ubyte.gz") == [
            "$.stages.data.labels: \(root)/Fixtures/broken/200-labels-idx1-ubyte.gz: holds 200 labels but \(root)/\(Self.images) holds 256 images; expected one label per image",
        ])
        #expect(problems(Self.labels) == [
            "$.stages.data.images: \(root)/\(Self.labels): expected an IDX image file (magic 0x00000803), found a label file",
        ])
        let cwd = FileManager.default.currentDirectoryPath
        let looked = "\(root)/Fixtures/idx/missing.gz" + (cwd == root ? "" : " and \(cwd)/Fixtures/idx/missing.gz")
        #expect(problems("Fixtures/idx/missing.gz") == [
            "$.stages.data.images: no such file or folder: 'Fixtures/idx/missing.gz' (looked for \(looked))",
        ])
        #expect(problems(Self.images, extra: #", "batch": 300"#) == [
            "$.stages.data.batch: the dataset holds 256 images, fewer than one batch of 300 (lower 'batch' or set 'dropLast' to false)",
        ])
        #expect(problems(Self.images, extra: #", "size": 16, "fit": "pad""#) == [
            "$.stages.data.size: cannot pad 28x28 images to the smaller 16x16 (use fit \"resize\" or a crop)",
        ])
        #expect(problems(Self.images, extra: #", "fit": "randomCrop""#) == [
            "$.stages.data.fit: randomCrop needs a 'size' to crop to",
        ])
    }
}
