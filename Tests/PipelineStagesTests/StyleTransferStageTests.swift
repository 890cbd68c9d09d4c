import Foundation
import GANFlowTestSupport
import ImageIO
import NeuralNet
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

@Suite struct StyleTransferStageTests {
    @Test func imageLoadResizesKeepingTheAspectOrToASquare() throws {
        let chelsea = fixture("photos/content/chelsea.png")  // 320 x 213
        let aspect = try buildPipeline(#""data": { "type": "image.load", "path": "Fixtures/photos/content/chelsea.png", "size": 64 }"#,
                                       consume: "data.image").stage()
        #expect(aspect.outputs == ["image": .tensor([1, 3, 43, 64])])
        let expected = try PNG.read(chelsea, channels: 3).resized(width: 64, height: 43)
        #expect(try aspect.run(["image"])["image"]!.tensor!.scalars == expected.pixels)
        let square = try buildPipeline(#""data": { "type": "image.load", "path": "Fixtures/photos/style/brick.png", "size": 40, "fit": "square" }"#,
                                       consume: "data.image").stage()
        #expect(square.outputs == ["image": .tensor([1, 3, 40, 40])])
        let gray = try square.run(["image"])["image"]!.tensor!.scalars
        #expect(Array(gray[0..<1600]) == Array(gray[1600..<3200]), "a gray image is repeated over the channels")
    }

    @Test func imageLoadErrorsNameTheFile() throws {
        let root = repositoryRoot, cwd = FileManager.default.currentDirectoryPath
        let places = "\(root)/nowhere.png" + (cwd == root ? "" : " and \(cwd)/nowhere.png")
        #expect(buildProblems(#""data": { "type": "image.load", "path": "nowhere.png" }"#, consume: "data.image") == [
            "$.stages.data.path: no such file or folder: 'nowhere.png' (looked for \(places))",
        ])
        #expect(buildProblems(#""data": { "type": "image.load", "path": "Fixtures/broken/truncated.png" }"#, consume: "data.image") == [
            "$.stages.data.path: \(root)/Fixtures/broken/truncated.png: read beyond end of data",
        ])
    }

    func parameter(_ start: String) throws -> (Pipeline, ImageParameterStage) {
        let p = try buildPipeline("""
            "c": { "type": "image.load", "path": "Fixtures/photos/content/coffee.png", "size": 16 },
            "data": { "type": "image.parameter", "content": "c.image", "init": "\(start)", "noise": 0.2 }
            """, consume: "data.image")
        return (p, p.stage() as! ImageParameterStage)
    }

    @Test func imageParameterStartsFromContentNoiseOrBoth() throws {
        let (p, content) = try parameter("content")
        let c = (p.stage("c") as! ImageLoadStage).image
        func first(_ s: ImageParameterStage) throws -> [Float] {
            try s.run(["image"], inputs: ["content": .tensor(c)])["image"]!.tensor!.scalars
        }
        #expect(content.outputs == ["image": .tensor([1, 3, 11, 16])])
        #expect(try first(content) == c.scalars)
        #expect(content.parameters.map(\.0) == ["image"] && content.parameters[0].1.requiresGrad)
        let noise = try first(try parameter("noise").1)
        #expect(noise != c.scalars && noise.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(noise == (try first(try parameter("noise").1)), "seeded by the pipeline seed and the stage id")
        let mixed = try first(try parameter("contentNoise").1)
        #expect(mixed.count == c.scalars.count)
        let offsets = zip(mixed, c.scalars).map { $0 - $1 }
        #expect(offsets.contains { $0 != 0 })
        #expect(zip(mixed, c.scalars).allSatisfy { m, v in abs(m - v) <= 0.2 + 1e-6 && m >= 0 && m <= 1 })
    }

    @Test func imageParameterIsClampedAfterAnUpdateAndCheckpointed() throws {
        let (p, stage) = try parameter("content")
        let c = (p.stage("c") as! ImageLoadStage).image
        _ = try stage.run(["image"], inputs: ["content": .tensor(c)])
        stage.image.data[0] = 1.5
        stage.image.data[1] = -0.25
        let read = try stage.run(["image"], mode: .sample, inputs: ["content": .tensor(c)])["image"]!.tensor!
        #expect(Array(read.scalars[0..<2]) == [1, 0])
        #expect(!read.requiresGrad)
        let state = try stage.checkpointState()
        let (_, other) = try parameter("noise")
        try other.restore(state)
        #expect(try other.run(["image"], inputs: ["content": .tensor(c)])["image"]!.tensor!.scalars == read.scalars)
    }

    static let features = """
    "c": { "type": "image.load", "path": "Fixtures/photos/content/chelsea.png", "size": 64 },
    "s": { "type": "image.load", "path": "Fixtures/photos/style/gravel.png", "size": 32 },
    "data": { "type": "features.random", "width": 4, "inputs": { "photo": "c.image", "art": "s.image" },
              "layers": { "low": ["block1_conv1", "features.7"], "deep": ["block4_conv2"] } }
    """

    @Test func featureOutputsArePyramidsPerInputAndGroup() throws {
        let p = try buildPipeline(Self.features, consume: "data.photo_low")
        let stage = p.stage()
        #expect(stage.outputs == [
            "photo_low": .pyramid([[1, 4, 43, 64], [1, 8, 21, 32]]), "photo_deep": .pyramid([[1, 32, 5, 8]]),
            "art_low": .pyramid([[1, 4, 32, 32], [1, 8, 16, 16]]), "art_deep": .pyramid([[1, 32, 4, 4]]),
        ])
        #expect(stage.inputsNeeded(for: "art_deep") == ["art"])
        let c = (p.stage("c") as! ImageLoadStage).image
        let out = try stage.run(["photo_low"], inputs: ["photo": .tensor(c)])
        guard case .pyramid(let levels)? = out["photo_low"] else { Issue.record("no pyramid"); return }
        #expect(levels.map(\.shape) == [[1, 4, 43, 64], [1, 8, 21, 32]])
        #expect(levels[0].scalars.contains { $0 > 0 } && levels[0].scalars.allSatisfy { $0 >= 0 }, "after the ReLU")
        let again = try stage.run(["photo_low"], inputs: ["photo": .tensor(c.copy())])
        guard case .pyramid(let cached)? = again["photo_low"] else { Issue.record("no pyramid"); return }
        #expect(cached.map(\.scalars) == levels.map(\.scalars))
        #expect(p.warnings.map(\.message).contains { $0.hasPrefix("features.random uses random weights, not pretrained VGG") })
    }

    @Test func featureLayerErrors() throws {
        let bad = Self.features.replacingOccurrences(of: "\"block4_conv2\"", with: "\"block4_conv9\"")
        #expect(buildProblems(bad, consume: "data.photo_low") == [
            "$.stages.data.layers: group 'deep': vgg19 has no layer 'block4_conv9'; layers are blockK_convJ, blockK_pool or features.N (did you mean 'block4_conv1'?)",
        ])
        let small = Self.features.replacingOccurrences(of: "\"size\": 32", with: "\"size\": 8")
            .replacingOccurrences(of: "\"block4_conv2\"", with: "\"block5_conv1\"")
        #expect(buildProblems(small, consume: "data.photo_low") == [
            "$.stages.data.inputs.art: VGG: images of 8x8 are too small for block5_conv1 (block4_pool halves 1x1)",
        ])
    }

    /// A torchvision-named VGG16 `features` file written from `net` (64 channels wide).
    static func writeVGG16(_ path: String, edit: (inout SafeTensorsArchive) -> Void = { _ in }) throws {
        var archive = SafeTensorsArchive()
        for m in VGGFeatures.modules(.vgg16) {
            guard let c = m.channels else { continue }
            archive.set("features.\(m.index).weight", Tensor(zeros: [c.output, c.input, 3, 3]))
            // Distinct biases, so the activations show which tensor was read.
            archive.set("features.\(m.index).bias", Tensor(repeating: Float(m.index) / 10, shape: [c.output]))
        }
        edit(&archive)
        try archive.write(to: path)
    }

    func vggProblems(_ path: String) -> [String] {
        buildProblems("""
            "c": { "type": "image.load", "path": "Fixtures/photos/content/chelsea.png", "size": 32 },
            "data": { "type": "features.vgg", "architecture": "vgg16", "weights": "\(path)", "inputs": { "photo": "c.image" } }
            """, consume: "data.photo_style")
    }

    @Test func vggUsesTheWeightFile() throws {
        let dir = temporaryDirectory("vgg")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/vgg16.safetensors"
        try Self.writeVGG16(path)
        #expect(vggProblems(path) == [])
        let p = try buildPipeline("""
            "c": { "type": "image.load", "path": "Fixtures/photos/content/chelsea.png", "size": 32 },
            "data": { "type": "features.vgg", "architecture": "vgg16", "weights": "\(path)", "inputs": { "photo": "c.image" } }
            """, consume: "data.photo_style")
        let c = (p.stage("c") as! ImageLoadStage).image
        let out = try p.stage().run(["photo_content"], inputs: ["photo": .tensor(c)])
        guard case .pyramid(let levels)? = out["photo_content"] else { Issue.record("no pyramid"); return }
        // Zero weights: block4_conv2 (features.19) is relu(its bias) = 1.9 everywhere.
        #expect(levels[0].shape == [1, 512, 2, 4])
        #expect(levels[0].scalars.allSatisfy { abs($0 - 1.9) < 1e-6 })
    }

    @Test func vggWeightFileErrorsAreExact() throws {
        let dir = temporaryDirectory("vgg")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(vggProblems(dir + "/absent.safetensors") == ["$.stages.data.weights: no such file or folder: \(dir)/absent.safetensors"])
        let missing = dir + "/missing.safetensors"
        try Self.writeVGG16(missing) { $0.remove("features.28.weight") }
        #expect(vggProblems(missing) == [
            "$.stages.data.weights: \(missing): no tensor 'features.28.weight' (block5_conv3 of vgg16, expected shape [512, 512, 3, 3])",
        ])
        let misshapen = dir + "/misshapen.safetensors"
        try Self.writeVGG16(misshapen) { $0.set("features.2.bias", Tensor(zeros: [32])) }
        #expect(vggProblems(misshapen) == [
            "$.stages.data.weights: \(misshapen): tensor 'features.2.bias' (block1_conv2 of vgg16) has shape [32], expected [64]",
        ])
    }

    @Test func imageSinkWritesEveryNStepsAndTheFinalImage() throws {
        let dir = temporaryDirectory("sink")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = """
        { "name": "sink", "steps": 5,
          "stages": {
            "c": { "type": "image.load", "path": "Fixtures/photos/content/coffee.png", "size": 24 },
            "X": { "type": "image.parameter", "content": "c.image" },
            "tv": { "type": "loss.tv", "input": "X.image" },
            "opt": { "type": "optimizer.adam", "minimize": "tv.loss", "parameters": "X", "lr": 0.01 },
            "save": { "type": "sink.image", "input": "X.image", "every": 2 }
          },
          "schedule": [ { "run": "opt" } ] }
        """
        let p = try PipelineBuilder(registry: .standard).build(try PipelineDocument.parse(text, file: repositoryRoot + "/sink.json"),
                                                               outputDirectory: dir)
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        _ = try Runner(pipeline: p, options: options).run()
        let written = try FileManager.default.contentsOfDirectory(atPath: dir + "/images").sorted()
        #expect(written == ["step-00000002.png", "step-00000004.png", "step-00000005.png"])
        let final = try PNG.read(dir + "/final.png")
        #expect(final.width == 24 && final.height == 16 && final.channels == 3)
        #expect(final == (try PNG.read(dir + "/images/step-00000005.png")))
    }
}
