import Foundation
import GANFlowTestSupport
import ImageIO
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

@Suite struct StyleTransferPipelineTests {
    /// Small images and a narrow random network, so a few steps take a moment.
    static let small = ["content.size=32", "style.size=32", "features.width=4"]

    func load(_ name: String, _ overrides: [String] = [], output: String) throws -> Pipeline {
        let doc = try PipelineDocument.load(file: repositoryRoot + "/pipelines/" + name, overrides: overrides)
        return try PipelineBuilder(registry: .standard).build(doc, outputDirectory: output)
    }

    func run(_ p: Pipeline, steps: Int, in dir: String) throws -> RunSummary {
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        options.stepsOverride = steps
        return try Runner(pipeline: p, options: options).run()
    }

    /// Every line of a run's metrics.jsonl as a dictionary.
    func metrics(_ dir: String) throws -> [[String: Any]] {
        try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    @Test(arguments: ["style-transfer.json", "style-transfer-adam.json"])
    func validatesAsShippedAndRunsTwoSmallSteps(file: String) throws {
        let dir = temporaryDirectory("style")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let full = try load(file, output: dir)
        #expect(full.stage("content").outputs == ["image": .tensor([1, 3, 170, 256])])
        #expect(full.warnings.map(\.path.description) == ["$.stages.features"], "the random-features warning")
        let p = try load(file, Self.small, output: dir)
        let summary = try run(p, steps: 2, in: dir)
        #expect(summary.lastStep == 2)
        let lines = try metrics(dir)
        #expect(lines.count == 2)
        let losses = lines.map { $0["loss.loss"] as! Double }
        #expect(losses.allSatisfy(\.isFinite) && losses[1] < losses[0])
        let final = try PNG.read(dir + "/final.png")
        #expect(final.width == 32 && final.height == 21 && final.channels == 3)
    }

    @Test func anyTwoPNGsCanBeSetAsContentAndStyle() throws {
        let dir = temporaryDirectory("style-set")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A 5x3 gray+alpha image as the content, a palette image as the style.
        let p = try load("style-transfer.json", Self.small + [
            "content.path=" + fixture("png-types/gray-alpha8.png"), "style.path=" + fixture("png-types/palette.png"),
        ], output: dir)
        #expect(p.stage("content").outputs == ["image": .tensor([1, 3, 19, 32])])
        _ = try run(p, steps: 1, in: dir)
        #expect(try pngHeader(dir + "/final.png") == [32, 19, 3, 8])
    }

    @Test func styleLossFallsByALargeFactorOnSmallImages() throws {
        let dir = temporaryDirectory("style-falls")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try load("style-transfer.json", ["content.size=64", "style.size=64", "features.width=8", "save.every=1000"], output: dir)
        _ = try run(p, steps: 30, in: dir)
        let style = try metrics(dir).map { $0["styleLoss.loss"] as! Double }
        #expect(style.count == 30)
        #expect(style.last! < style.first! / 20, "style loss \(style.first!) -> \(style.last!)")
        // L-BFGS's line search evaluated the loss more often than once per step.
        let evaluations = try metrics(dir).last!["optimizer.evaluations"] as! Double
        #expect(evaluations > 30)
    }
}
