import Foundation
import GANFlowTestSupport
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

let fashionMNIST = "/usr/share/datasets/fashion-mnist"
let hasFashionMNIST = FileManager.default.fileExists(atPath: fashionMNIST + "/train-images-idx3-ubyte.gz")

/// The full Fashion-MNIST training set through `dataset.idx`, when Debian's package is installed.
@Suite struct FashionMNISTTrainingSetTests {
    @Test(.enabled(if: hasFashionMNIST, "needs Debian's dataset-fashion-mnist in /usr/share/datasets"))
    func servesTheTrainingSetPaddedTo32() throws {
        let stage = try buildPipeline("""
        "data": { "type": "dataset.idx", "images": "\(fashionMNIST)/train-images-idx3-ubyte.gz",
                  "labels": "\(fashionMNIST)/train-labels-idx1-ubyte.gz", "size": 32, "fit": "pad" }
        """).stage()
        #expect(stage.outputs == ["images": .tensor([64, 1, 32, 32]), "labels": .tensor([64])])
        #expect((stage as! EpochSource).batchesPerEpoch == 937)
        let (images, labels) = try stage.nextBatch()
        #expect(images.count == 64 * 1024 && labels!.allSatisfy { (0..<10).contains($0) })
        try stage.finish()
    }
}

/// Loader throughput and the training loop's wait for data; run only with GANFLOW_DATA_BENCH=1,
/// in a release build (`swift build -c release --build-tests -Xswiftc -enable-testing`, then
/// `GANFLOW_DATA_BENCH=1 swift test -c release --skip-build --filter DataThroughput`). They print
/// and never assert on time.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["GANFLOW_DATA_BENCH"] != nil, "set GANFLOW_DATA_BENCH=1 to measure"))
struct DataThroughputTests {
    func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Images per second taking `batches` training batches from `stage`.
    func rate(_ stage: any Stage, batches: Int) throws -> Double {
        var images = 0
        let t = try seconds {
            for _ in 0..<batches { images += try stage.run(["images"])["images"]!.tensor!.shape[0] }
        }
        try stage.finish()
        return Double(images) / t
    }

    @Test(.enabled(if: hasFashionMNIST, "needs Debian's dataset-fashion-mnist"))
    func idxTrainingSet() throws {
        for prefetch in [3, 0] {
            var stage: (any Stage)!
            let build = try seconds {
                stage = try buildPipeline("""
                "data": { "type": "dataset.idx", "images": "\(fashionMNIST)/train-images-idx3-ubyte.gz", "size": 32, "fit": "pad", "prefetch": \(prefetch) }
                """).stage()
            }
            let r = try rate(stage, batches: 937)
            print("dataset.idx Fashion-MNIST train, pad 28->32, batch 64, prefetch \(prefetch): \(Int(r)) images/s over one epoch (build, i.e. inflate + check: \(String(format: "%.2f", build)) s)")
        }
    }

    @Test func imageFolder() throws {
        let variants = [(#""size": 32"#, "resize 28->32"), (#""size": 24, "fit": "randomCrop""#, "random crop 24")]
        for (keys, what) in variants {
            for prefetch in [3, 0] {
                let stage = try buildPipeline("""
                "data": { "type": "dataset.images", "path": "Fixtures/fashion-mnist", "channels": 1, "prefetch": \(prefetch), \(keys) }
                """).stage()
                let r = try rate(stage, batches: 80)
                print("dataset.images fixture folder (300 PNGs), \(what), batch 64, prefetch \(prefetch): \(Int(r)) images/s")
            }
        }
        let photos = try buildPipeline(#""data": { "type": "dataset.images", "path": "Fixtures/photos/patches", "size": 64, "labels": false }"#).stage()
        print("dataset.images photo patches (148 RGB 64x64 PNGs), batch 64, prefetch 3: \(Int(try rate(photos, batches: 40))) images/s")
    }

    @Test func augmentation() throws {
        let p = try buildPipeline("""
        "data": { "type": "dataset.images", "path": "Fixtures/fashion-mnist", "size": 32, "channels": 1 },
        "aug": { "type": "augment.diff", "inputs": { "real": "data.images" }, "policy": "color,translation,cutout,flip" }
        """, consume: "aug.real")
        var rng = PhiloxRandom(seed: 1)
        let x = Tensor(randomUniform: [64, 1, 32, 32], low: -1, high: 1, using: &rng)
        var n = 0
        let t = try seconds {
            for i in 0..<100 {
                _ = try p.stage("aug").run(["real"], index: i, inputs: ["real": .tensor(x)], stageID: "aug")
                n += 64
            }
        }
        print("augment.diff color,translation,cutout,flip on [64, 1, 32, 32]: \(Int(Double(n) / t)) images/s")
    }

    /// A DCGAN-32 run (ngf = ndf = 64, batch 64) on Fashion-MNIST: time per step and time the loop
    /// waited for the data queue.
    @Test func dcgan32WaitForData() throws {
        let data = hasFashionMNIST
            ? #""type": "dataset.idx", "images": "\#(fashionMNIST)/train-images-idx3-ubyte.gz", "size": 32, "fit": "pad""#
            : #""type": "dataset.images", "path": "Fixtures/fashion-mnist", "size": 32, "channels": 1"#
        for source in hasFashionMNIST ? [data, #""type": "dataset.images", "path": "Fixtures/fashion-mnist", "size": 32, "channels": 1"#] : [data] {
            let steps = 30
            let text = """
            { "name": "bench", "seed": 1, "steps": \(steps),
              "stages": {
                "data": { \(source), "batch": 64 },
                "z":    { "type": "noise.normal", "dim": 100, "batch": 64 },
                "G":    { "type": "generator.dcgan", "input": "z.samples", "resolution": 32, "channels": 1 },
                "D":    { "type": "discriminator.dcgan", "inputs": { "real": "data.images", "fake": "G.images" } },
                "loss": { "type": "loss.nonsaturating", "real": "D.real", "fake": "D.fake" },
                "optD": { "type": "optimizer.adam", "minimize": "loss.discriminator", "parameters": "D" },
                "optG": { "type": "optimizer.adam", "minimize": "loss.generator", "parameters": "G" }
              },
              "schedule": [ { "run": "optD" }, { "run": "optG" } ], "checkpoint": { "every": 1000 } }
            """
            let dir = temporaryDirectory("bench")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let doc = try PipelineDocument.parse(text, file: repositoryRoot + "/bench.json")
            let p = try PipelineBuilder(registry: .standard).build(doc, outputDirectory: dir)
            var options = Runner.Options(runDirectory: dir)
            options.quiet = true
            let summary = try Runner(pipeline: p, options: options).run()
            let stage = p.stage()
            let core = (stage as? IDXDatasetStage)?.core ?? (stage as! ImageFolderDatasetStage).core
            let (wait, first, batches) = core.waitStatistics
            let ms = { (s: Double) in String(format: "%.3f", s * 1000) }
            print("DCGAN-32 step (\(source.contains("idx") ? "dataset.idx" : "dataset.images")): \(String(format: "%.1f", summary.seconds / Double(steps) * 1000)) ms/step; waited for data \(ms((wait - first) / Double(max(batches - 1, 1)))) ms per step after the first (\(batches - 1) steps), \(ms(first)) ms for the first batch")
        }
    }
}
