import Foundation
import PipelineGraph
import PipelineStages
import Testing
import TensorRuntime

@Suite struct PipelineFileTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let files = ["mlp-gan-fashion", "dcgan28-notebook", "dcgan-fashion", "dcgan64-rgb", "wgan-gp-fashion",
                        "hinge-sn-fashion", "lsgan-fashion", "r1-fashion"]

    static let registry = StageRegistry.standard

    static func path(_ name: String) -> String { "\(root)/pipelines/\(name).json" }

    @Test func everyPipelineIsListed() throws {
        let found = try FileManager.default.contentsOfDirectory(atPath: "\(Self.root)/pipelines").filter { $0.hasSuffix(".json") }
        #expect(Set(found) == Set((Self.files + ProGANPipelineFileTests.files + MSGGANPipelineFileTests.files).map { $0 + ".json" }))
    }

    @Test(arguments: files)
    func validates(_ name: String) throws {
        let doc = try PipelineDocument.load(file: Self.path(name))
        let p = try PipelineBuilder(registry: Self.registry).build(doc, outputDirectory: NSTemporaryDirectory())
        #expect(p.warnings.isEmpty, "\(p.warnings)")
        #expect(doc.name == name)
    }

    /// Two steps on the fixtures (the IDX fixture of 256 test images, the photo patches), small batches.
    @Test(arguments: files)
    func runsOnFixtures(_ name: String) throws {
        var overrides = ["data.batch=8", "z.batch=8"]
        let text = try String(contentsOfFile: Self.path(name), encoding: .utf8)
        if text.contains("dataset.idx") { overrides.append("data.images=\(Self.root)/Fixtures/idx/t10k-256-images-idx3-ubyte.gz") }
        let doc = try PipelineDocument.load(file: Self.path(name), overrides: overrides)
        let dir = temporaryDirectory("pipeline-\(name)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try PipelineBuilder(registry: Self.registry).build(doc, outputDirectory: dir)
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        options.stepsOverride = 2
        let summary = try Runner(pipeline: p, options: options).run()
        #expect(summary.lastStep == 2)
        #expect(summary.finalScalars["loss.discriminator"]?.isFinite == true)
        #expect(summary.finalScalars["loss.generator"]?.isFinite == true)
        #expect(Checkpoint.list(in: dir).count == 1)
        #expect(FileManager.default.fileExists(atPath: dir + "/samples/step-00000002.png"), "the grid of the last step")
        // What users do next: sample from the run.
        let (_, g) = try TrainedRun(dir).generator(nil, registry: Self.registry)
        #expect(try g.samples(count: 3, seed: 1).shape.first == 3)
    }
}
