import Foundation
import GANFlowTestSupport
import ImageIO
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

@Suite struct SinkStageTests {
    static let data = #""data": { "type": "dataset.images", "path": "Fixtures/fashion-mnist", "batch": 20, "size": 32 }"#

    @Test func gridIsWrittenUnderTheOutputFolderByStep() throws {
        let out = temporaryDirectory("grid")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let p = try buildPipeline(Self.data + #", "grid": { "type": "sink.grid", "input": "data.images", "nrow": 8, "padding": 2 }"#,
                                  consume: "data.images", output: out)
        let evaluator = Evaluator(pipeline: p, kind: .dispatch)
        for step in [250, 500] {
            _ = try withoutGradients { try evaluator.evaluate(["grid": ["written"]], step: step, index: 0, mode: .sample) }
        }
        try p.stage("grid").finish()
        let path = out + "/samples/step-00000250.png"
        #expect((p.stage("grid") as! GridSinkStage).path(step: 250) == path)
        // 20 images of 32x32, 8 a row: 8 * 34 + 2 wide, 3 * 34 + 2 high.
        #expect(try pngHeader(path) == [274, 104, 1, 8])
        // The grid holds the fixed (first, unshuffled) batch, identical at every step.
        let grid = try PNG.read(path)
        let again = try PNG.read(out + "/samples/step-00000500.png")
        #expect(grid == again)
        let first = try PNG.read(fixture("fashion-mnist/Ankle_boot/0000.png"))
        let resized = try first.resized(width: 32, height: 32)
        #expect(abs(grid[0, 2 + 16, 2 + 16] - resized[0, 16, 16]) < 1.0 / 255 + 1e-6)
    }

    @Test func sixteenBitGridsAndBadInputs() throws {
        let out = temporaryDirectory("grid16")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let p = try buildPipeline(Self.data + #", "grid": { "type": "sink.grid", "input": "data.images", "bitDepth": 16, "folder": "g" }"#, output: out)
        _ = try p.stage("grid").run(["written"], inputs: ["input": .tensor(Tensor(zeros: [4, 3, 8, 8]))], step: 3)
        try p.stage("grid").finish()
        #expect(try pngHeader(out + "/g/step-00000003.png") == [42, 12, 3, 16])
        #expect(buildProblems(Self.data + #", "grid": { "type": "sink.grid", "input": "data.labels" }"#)
                == ["$.stages.grid.input: expected images [N, C, H, W] with C of 1, 3 or 4, found tensor [20]"])
        #expect(buildProblems(Self.data + #", "grid": { "type": "sink.grid", "input": "data.images", "bitDepth": 12 }"#)
                == ["$.stages.grid.bitDepth: expected 8 or 16, found 12"])
    }

    @Test func imagesSinkWritesOnePNGPerImage() throws {
        let out = temporaryDirectory("images")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let p = try buildPipeline(Self.data + #", "dump": { "type": "sink.images", "input": "data.images" }"#, output: out)
        let batch = try Tensor(shape: [3, 1, 2, 2], scalars: [-1, 0, 1, 0.5, 1, 1, 1, 1, -1, -1, -1, -1])
        _ = try p.stage("dump").run(["written"], inputs: ["input": .tensor(batch)], step: 7)
        try p.stage("dump").finish()
        let files = try FileManager.default.contentsOfDirectory(atPath: out + "/images/step-00000007").sorted()
        #expect(files == ["0000.png", "0001.png", "0002.png"])
        let first = try PNG.read(out + "/images/step-00000007/0000.png")
        let expected: [Float] = [0, 128, 255, 191].map { Float($0) / 255 }
        #expect(first.pixels == expected)
    }

    @Test func aFailedWriteIsReportedByFinish() throws {
        let out = temporaryDirectory("fail")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let p = try buildPipeline(Self.data + #", "grid": { "type": "sink.grid", "input": "data.images" }"#, output: out)
        // A folder where the file should go makes the write fail.
        try FileManager.default.createDirectory(atPath: out + "/samples/step-00000001.png", withIntermediateDirectories: true)
        _ = try p.stage("grid").run(["written"], inputs: ["input": .tensor(Tensor(zeros: [1, 1, 4, 4]))], step: 1)
        #expect(throws: ImageIOError.self) { try p.stage("grid").finish() }
    }
}
