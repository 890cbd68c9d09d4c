import Foundation
import GANFlowTestSupport
import ImageIO
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

@Suite struct EndToEndTests {
    static let pipeline = """
    { "name": "fashion-dcgan", "seed": 3, "steps": 3,
      "stages": {
        "data": { "type": "dataset.images", "path": "Fixtures/fashion-mnist", "size": 32, "channels": 1, "batch": 16 },
        "z":    { "type": "noise.normal", "dim": 16, "batch": 16 },
        "G":    { "type": "generator.dcgan", "input": "z.samples", "resolution": 32, "channels": 1, "width": 8 },
        "D":    { "type": "discriminator.dcgan", "inputs": { "real": "data.images", "fake": "G.images" }, "width": 8 },
        "loss": { "type": "loss.nonsaturating", "real": "D.real", "fake": "D.fake" },
        "optD": { "type": "optimizer.adam", "minimize": "loss.discriminator", "parameters": "D" },
        "optG": { "type": "optimizer.adam", "minimize": "loss.generator", "parameters": "G" },
        "grid": { "type": "sink.grid", "input": "G.images", "every": 2, "nrow": 4 }
      },
      "schedule": [ { "run": "optD" }, { "run": "optG" } ] }
    """

    func run(_ dir: String, steps: Int? = nil, resume: Bool = false) throws -> Pipeline {
        let doc = try PipelineDocument.parse(Self.pipeline, file: repositoryRoot + "/fashion-dcgan.json")
        let p = try PipelineBuilder(registry: .standard).build(doc, outputDirectory: dir)
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        options.resume = resume
        options.stepsOverride = steps
        _ = try Runner(pipeline: p, options: options).run()
        return p
    }

    @Test func trainsThreeStepsAndWritesGrids() throws {
        let dir = temporaryDirectory("e2e")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try run(dir)
        // Sinks run on their steps and at the last one.
        for step in [2, 3] {
            #expect(try pngHeader(dir + "/samples/step-0000000\(step).png") == [138, 138, 1, 8])
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/samples/step-00000001.png"))
        let lines = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3)
        // One real batch per step: the loader stands at batch 3 of epoch 0.
        #expect((p.stage() as! ImageFolderDatasetStage).core.nextPosition == LoaderPosition(epoch: 0, index: 3))
    }

    @Test func resumingContinuesWithTheSameBatches() throws {
        let straight = temporaryDirectory("e2e-straight"), split = temporaryDirectory("e2e-split")
        defer {
            try? FileManager.default.removeItem(atPath: straight)
            try? FileManager.default.removeItem(atPath: split)
        }
        let a = try run(straight)
        _ = try run(split, steps: 2)
        let b = try run(split, resume: true)
        #expect((b.stage() as! ImageFolderDatasetStage).core.nextPosition == LoaderPosition(epoch: 0, index: 3))
        #expect(a.stage("D").parameters.map(\.1.scalars) == b.stage("D").parameters.map(\.1.scalars))
    }
}
