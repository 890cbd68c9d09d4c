import Foundation
import PipelineGraph
import PipelineStages
import Testing
import TensorRuntime

@Suite struct PipelineFileTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    /// The GAN pipelines trained on the fixtures here; other families have their own run tests.
    static let ganFiles = ["mlp-gan-fashion", "dcgan28-notebook", "dcgan-fashion", "dcgan64-rgb", "wgan-gp-fashion",
                           "hinge-sn-fashion", "lsgan-fashion", "r1-fashion"]

    /// Every pipeline shipped in pipelines/.
    static var all: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(root)/pipelines")) ?? [])
            .filter { $0.hasSuffix(".json") && !$0.hasSuffix(".schema.json") }.map { String($0.dropLast(5)) }.sorted()
    }

    static let registry = StageRegistry.standard

    static func path(_ name: String) -> String { "\(root)/pipelines/\(name).json" }

    @Test func theGANPipelinesAreShipped() {
        #expect(Set(Self.ganFiles + ["classifier-fashion"]).isSubset(of: Set(Self.all)))
    }

    /// Every shipped pipeline validates, named after its file; only stages that say their results
    /// differ from what the name suggests (random features for style transfer) may warn.
    /// Pipelines whose weight file the user brings, with the stage key that names it and a
    /// stand-in with the same architecture (the reduced-width golden Inception).
    static let userWeights = ["dcgan64-rgb-inception": ("inception.weights", "\(root)/Fixtures/golden/fid-inception-w16.safetensors")]

    @Test(arguments: all)
    func validates(_ name: String) throws {
        var overrides: [String] = []
        if let (key, standIn) = Self.userWeights[name] {
            // Without the user's file, the problem names it.
            let bare = try PipelineDocument.load(file: Self.path(name))
            #expect {
                try PipelineBuilder(registry: Self.registry).build(bare, outputDirectory: NSTemporaryDirectory())
            } throws: { error in
                "\(error)".contains("weights: no such file or folder: ") && "\(error)".contains("Scripts/convert_fid_inception.py")
            }
            overrides.append("\(key)=\(standIn)")
        }
        let doc = try PipelineDocument.load(file: Self.path(name), overrides: overrides)
        let p = try PipelineBuilder(registry: Self.registry).build(doc, outputDirectory: NSTemporaryDirectory())
        #expect(p.warnings.allSatisfy { $0.code == "stage.warning" }, "\(p.warnings)")
        #expect(doc.name == name)
    }

    /// Trains pipeline `name` for `steps` steps on the fixtures: batches of 8, the IDX fixture of
    /// 256 test images for Fashion-MNIST, a few features for the metrics; then `overrides`. Returns
    /// the run directory (removed with the test process's scratch folder) and the summary.
    static func runOnFixtures(_ name: String, steps: Int, overrides extra: [String] = [],
                              losses: [String] = ["loss.discriminator", "loss.generator"]) throws -> (dir: String, summary: RunSummary) {
        var overrides = ["data.batch=8", "z.batch=8"]
        let text = try String(contentsOfFile: path(name), encoding: .utf8)
        if text.contains("dataset.idx") { overrides.append("data.images=\(root)/Fixtures/idx/t10k-256-images-idx3-ubyte.gz") }
        if text.contains("features.classifier") {
            let idx = "\(root)/Fixtures/idx/t10k-256"
            overrides += ["features.count=16", "test.images=\(idx)-images-idx3-ubyte.gz", "test.labels=\(idx)-labels-idx1-ubyte.gz"]
        }
        let doc = try PipelineDocument.load(file: path(name), overrides: overrides + extra)
        let dir = temporaryDirectory("pipeline-\(name)")
        let p = try PipelineBuilder(registry: registry).build(doc, outputDirectory: dir)
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        options.stepsOverride = steps
        let summary = try Runner(pipeline: p, options: options).run()
        #expect(summary.lastStep == steps)
        for loss in losses { #expect(summary.finalScalars[loss]?.isFinite == true, "\(loss)") }
        return (dir, summary)
    }

    /// Two steps on the fixtures (the IDX fixture of 256 test images, the photo patches), small batches.
    @Test(arguments: ganFiles)
    func runsOnFixtures(_ name: String) throws {
        let (dir, _) = try Self.runOnFixtures(name, steps: 2)
        #expect(Checkpoint.list(in: dir).count == 1)
        #expect(FileManager.default.fileExists(atPath: dir + "/samples/step-00000002.png"), "the grid of the last step")
        // What users do next: sample from the run.
        let (_, g) = try TrainedRun(dir).generator(nil, registry: Self.registry)
        #expect(try g.samples(count: 3, seed: 1).shape.first == 3)
    }

    /// The classifier pipeline for a few steps on the IDX fixture (train and test), then exported
    /// as `features.classifier` loads it.
    @Test func classifierRunsOnFixturesAndExports() throws {
        let images = "\(Self.root)/Fixtures/idx/t10k-256-images-idx3-ubyte.gz", labels = "\(Self.root)/Fixtures/idx/t10k-256-labels-idx1-ubyte.gz"
        let doc = try PipelineDocument.load(file: Self.path("classifier-fashion"), overrides: [
            "data.images=\(images)", "data.labels=\(labels)", "data.batch=16", "test.images=\(images)", "test.labels=\(labels)",
        ])
        let dir = temporaryDirectory("pipeline-classifier")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try PipelineBuilder(registry: Self.registry).build(doc, outputDirectory: dir)
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        options.stepsOverride = 3
        let summary = try Runner(pipeline: p, options: options).run()
        #expect(summary.finalScalars["loss.loss"]?.isFinite == true)
        #expect(summary.finalScalars["accuracy.accuracy"].map { (0...1).contains($0) } == true)
        let file = dir + "/c.safetensors"
        try TrainedRun(dir).stateDict(stage: "C", ema: false, registry: Self.registry).write(to: file)
        #expect(try FeatureExtractor(weights: file, size: 28).dimension == 128)
    }
}
