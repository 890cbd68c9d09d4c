import Foundation
import GANFlowTestSupport
import ImageIO
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

@Suite struct CIFARAndPyramidTests {
    /// A folder of CIFAR-10 binary batches with `perFile` records each; record `r` of the whole set
    /// has label `r % 10` and every byte of its image equal to `r % 251`.
    func cifarFolder(perFile: Int = 6) throws -> String {
        let dir = temporaryDirectory("cifar")
        var r = 0
        for name in (1...5).map({ "data_batch_\($0).bin" }) + ["test_batch.bin"] {
            var bytes = [UInt8]()
            for _ in 0..<perFile {
                bytes.append(UInt8(r % 10))
                bytes += [UInt8](repeating: UInt8(r % 251), count: 3072)
                r += 1
            }
            try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + name))
        }
        return dir
    }

    func cifar(_ dir: String, _ extra: String = "") throws -> any Stage {
        try buildPipeline(#""data": { "type": "dataset.cifar", "path": "\#(dir)", "batch": 4 \#(extra) }"#).stage()
    }

    @Test func readsTheTrainingBatchesInOrder() throws {
        let dir = try cifarFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let stage = try cifar(dir, #", "shuffle": false"#)
        #expect(stage.outputs == ["images": .tensor([4, 3, 32, 32]), "labels": .tensor([4])])
        #expect((stage as! EpochSource).batchesPerEpoch == 7)  // 30 training records
        var labels: [Float] = []
        for _ in 0..<2 {
            let (images, l) = try stage.nextBatch()
            labels += l!
            _ = images
        }
        #expect(labels == (0..<8).map { Float($0 % 10) })
        let test = try cifar(dir, #", "split": "test", "shuffle": false"#)
        let (images, l) = try test.nextBatch()
        #expect(l == [0, 1, 2, 3])  // records 30...33
        #expect(images[0] == 2 * Float(30) / 255 - 1 && images[3072] == 2 * Float(31) / 255 - 1)
    }

    @Test func streamingShufflingAndPrefetchAgree() throws {
        let dir = try cifarFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let memory = try cifar(dir, #", "prefetch": 0"#), disk = try cifar(dir, #", "streamAbove": 0"#)
        for i in 0..<10 {
            #expect(try memory.nextBatch() == disk.nextBatch(), "batch \(i)")
        }
    }

    @Test func badCIFARInputsAreClearErrors() throws {
        let dir = try cifarFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.removeItem(atPath: dir + "/data_batch_3.bin")
        #expect(buildProblems(#""data": { "type": "dataset.cifar", "path": "\#(dir)" }"#) == [
            "$.stages.data.path: \(dir): no data_batch_3.bin (or data_batch_3.bin.gz); expected the CIFAR-10 binary batches (data_batch_1.bin, data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin)",
        ])
        let short = dir + "/short.bin"
        try Data([UInt8](repeating: 1, count: 3073 + 100)).write(to: URL(fileURLWithPath: short))
        #expect(buildProblems(#""data": { "type": "dataset.cifar", "path": "\#(short)", "batch": 1 }"#) == [
            "$.stages.data.path: \(short): size 3173 bytes is not a whole number of 3073-byte records (1 label + 3x32x32 image): record 1 has 100 of 3073 bytes",
        ])
    }

    @Test func pyramidStageGivesEveryScaleAndPassesGradients() throws {
        let p = try buildPipeline("""
        "data": { "type": "dataset.idx", "images": "Fixtures/idx/t10k-256-images-idx3-ubyte.gz", "size": 16, "batch": 2 },
        "pyr": { "type": "transform.pyramid", "input": "data.images", "smallest": 4 }
        """, consume: "pyr.pyramid")
        #expect(p.stage("pyr").outputs == ["pyramid": .pyramid([[2, 1, 4, 4], [2, 1, 8, 8], [2, 1, 16, 16]])])
        let x = Tensor(randomUniform: [2, 1, 16, 16], using: &rng).requiringGradients()
        guard case .pyramid(let levels)? = try p.stage("pyr").run(["pyramid"], inputs: ["input": .tensor(x)])["pyramid"] else {
            Issue.record("no pyramid")
            return
        }
        #expect(levels.map(\.shape) == [[2, 1, 4, 4], [2, 1, 8, 8], [2, 1, 16, 16]])
        let expected = try x.avgPool2d(kernel: 4).scalars
        #expect(largestDifference(levels[0].scalars, expected) < 1e-6)
        // Each coarse pixel averages 16 inputs: the gradient of its sum is 1/16 everywhere.
        let g = try gradients(of: levels[0].sum(), wrt: [x])[0]
        #expect(g.scalars.allSatisfy { abs($0 - 1.0 / 16) < 1e-7 })
        #expect(buildProblems("""
        "data": { "type": "dataset.idx", "images": "Fixtures/idx/t10k-256-images-idx3-ubyte.gz", "size": 24, "batch": 2 },
        "pyr": { "type": "transform.pyramid", "input": "data.images", "smallest": 4 }
        """, consume: "pyr.pyramid") == ["$.stages.pyr.smallest: halving 24 does not reach 4 (use sizes that are a power of two times 4)"])
    }
}

nonisolated(unsafe) private var rng = PhiloxRandom(seed: 11)
