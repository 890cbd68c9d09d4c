import Foundation
import NeuralNet
import PipelineGraph
import PipelineStages
import Testing
import TensorRuntime

@Suite struct ModelStageTests {
    /// Builds `z -> G` and `data -> D` and checks the declared shapes against one evaluation.
    func check(generator: String, discriminator: String, latent: String = #""dim": 100, "spatial": true"#,
               images: String) throws -> Pipeline {
        let p = try pipeline(stages: """
            "z": { "type": "noise.normal", "batch": 4, \(latent) },
            "data": { "type": "test.images", "batch": 4, \(images) },
            "G": { \(generator), "input": "z.samples" },
            "D": { \(discriminator), "inputs": { "real": "data.images", "fake": "G.images" } },
            "loss": { "type": "loss.nonsaturating", "real": "D.real", "fake": "D.fake" },
            "optD": { "type": "optimizer.adam", "minimize": "loss.discriminator", "parameters": "D" },
            "optG": { "type": "optimizer.adam", "minimize": "loss.generator", "parameters": "G" }
            """)
        let values = try Evaluator(pipeline: p, kind: .serial).evaluate(["D": ["real", "fake"]], step: 1, index: 0, mode: .train)
        for (wire, value) in values {
            #expect(p.outputType(wire)?.shape == value.tensor?.shape, "\(wire)")
        }
        #expect(p.outputType(Wire(stage: "D", port: "fake")) == .tensor([4]))
        return p
    }

    @Test func dcgan32IsTheBenchmarkModel() throws {
        let p = try check(generator: #""type": "generator.dcgan""#, discriminator: #""type": "discriminator.dcgan""#,
                          images: #""size": 32"#)
        #expect(p.outputType(Wire(stage: "G", port: "images")) == .tensor([4, 1, 32, 32]))
        #expect(shapes(p.nodes["G"]!.stage.parameters) == [
            "0.weight": [100, 256, 4, 4], "1.weight": [256], "1.bias": [256], "3.weight": [256, 128, 4, 4],
            "4.weight": [128], "4.bias": [128], "6.weight": [128, 64, 4, 4], "7.weight": [64], "7.bias": [64],
            "9.weight": [64, 1, 4, 4],
        ])
        #expect(shapes(p.nodes["D"]!.stage.parameters) == [
            "0.weight": [64, 1, 4, 4], "2.weight": [128, 64, 4, 4], "3.weight": [128], "3.bias": [128],
            "5.weight": [256, 128, 4, 4], "6.weight": [256], "6.bias": [256], "8.weight": [1, 256, 4, 4],
        ])
    }

    @Test func notebook28Preset() throws {
        let p = try check(generator: #""type": "generator.dcgan", "preset": "notebook28""#,
                          discriminator: #""type": "discriminator.dcgan", "preset": "notebook28""#, images: #""size": 28"#)
        #expect(p.outputType(Wire(stage: "G", port: "images")) == .tensor([4, 1, 28, 28]))
        #expect(shapes(p.nodes["G"]!.stage.parameters) == [
            "0.weight": [100, 256, 3, 3], "1.weight": [256], "1.bias": [256], "3.weight": [256, 128, 3, 3],
            "4.weight": [128], "4.bias": [128], "6.weight": [128, 64, 3, 3], "7.weight": [64], "7.bias": [64],
            "9.weight": [64, 1, 3, 3],
        ])
        #expect(shapes(p.nodes["D"]!.stage.parameters) == [
            "0.weight": [64, 1, 4, 4], "2.weight": [128, 64, 4, 4], "3.weight": [128], "3.bias": [128],
            "5.weight": [256, 128, 4, 4], "6.weight": [256], "6.bias": [256], "8.weight": [1, 256, 4, 4],
        ])
    }

    @Test func classic64PresetInRGB() throws {
        let p = try check(generator: #""type": "generator.dcgan", "preset": "classic64", "channels": 3"#,
                          discriminator: #""type": "discriminator.dcgan", "preset": "classic64""#,
                          latent: #""dim": 100"#, images: #""size": 64, "channels": 3"#)
        #expect(p.outputType(Wire(stage: "G", port: "images")) == .tensor([4, 3, 64, 64]))
        let g = shapes(p.nodes["G"]!.stage.parameters)
        #expect(g["0.weight"] == [100, 512, 4, 4] && g["12.weight"] == [64, 3, 4, 4])
        let d = shapes(p.nodes["D"]!.stage.parameters)
        #expect(d["0.weight"] == [64, 3, 4, 4] && d["8.weight"] == [512, 256, 4, 4] && d["11.weight"] == [1, 512, 4, 4])
    }

    @Test func depthAndWidthAreConfigurable() throws {
        // 28 = 7 * 2^2 by default; depth 1 starts from 14x14.
        let p = try check(generator: #""type": "generator.dcgan", "resolution": 28, "width": 8, "depth": 1"#,
                          discriminator: #""type": "discriminator.dcgan", "width": 8"#, images: #""size": 28"#)
        #expect(shapes(p.nodes["G"]!.stage.parameters) == ["0.weight": [100, 8, 14, 14], "1.weight": [8], "1.bias": [8], "3.weight": [8, 1, 4, 4]])
        let d = shapes(p.nodes["D"]!.stage.parameters)
        #expect(d == ["0.weight": [8, 1, 4, 4], "2.weight": [16, 8, 4, 4], "3.weight": [16], "3.bias": [16], "5.weight": [1, 16, 7, 7]])
    }

    @Test func pyTorchExamplesNamesPointToTheKeys() {
        // pytorch/examples' DCGAN calls the widths ngf and ndf; the descriptions name them.
        let z = #""z": { "type": "noise.normal", "dim": 100, "batch": 4 }, "#
        let g = buildProblems(z + #""G": { "type": "generator.dcgan", "input": "z.samples", "ngf": 32 }"#, consume: "G.images")
        #expect(g.contains("$.stages.G.ngf: unknown key 'ngf' for generator.dcgan (did you mean 'width' (ngf)?)"), "\(g)")
        let d = buildProblems(z + #""D": { "type": "discriminator.dcgan", "input": "z.samples", "ndf": 32 }"#, consume: "D.output")
        #expect(d.contains("$.stages.D.ndf: unknown key 'ndf' for discriminator.dcgan (did you mean 'width' (ndf)?)"), "\(d)")
    }

    @Test func spectralNormUsesPyTorchNames() throws {
        let p = try check(generator: #""type": "generator.dcgan", "width": 8"#,
                          discriminator: #""type": "discriminator.dcgan", "width": 8, "norm": "spectral""#, images: #""size": 32"#)
        let d = try stage(p, "D", as: DCGANDiscriminatorStage.self).stateDict(ema: false)
        #expect(d.names.sorted() == [
            "0.bias", "0.weight_orig", "0.weight_u", "0.weight_v", "2.bias", "2.weight_orig", "2.weight_u", "2.weight_v",
            "4.bias", "4.weight_orig", "4.weight_u", "4.weight_v", "6.bias", "6.weight_orig", "6.weight_u", "6.weight_v",
        ])
        #expect(d.entry("2.weight_u")?.shape == [16] && d.entry("2.weight_v")?.shape == [8 * 16])
        // Only the weights and biases train; u and v are buffers.
        #expect(p.nodes["D"]!.stage.parameters.count == 8)
    }

    @Test func mlpDefaultsAreTheNotebooks() throws {
        let p = try check(generator: #""type": "generator.mlp""#, discriminator: #""type": "discriminator.mlp""#,
                          latent: #""dim": 100"#, images: #""size": 28"#)
        #expect(p.outputType(Wire(stage: "G", port: "images")) == .tensor([4, 1, 28, 28]))
        let g = try stage(p, "G", as: MLPGeneratorStage.self).stateDict(ema: false)
        #expect(g.names.sorted() == [
            "0.bias", "0.weight", "1.bias", "1.num_batches_tracked", "1.running_mean", "1.running_var", "1.weight",
            "3.bias", "3.weight", "4.bias", "4.num_batches_tracked", "4.running_mean", "4.running_var", "4.weight",
            "6.bias", "6.weight", "7.bias", "7.num_batches_tracked", "7.running_mean", "7.running_var", "7.weight",
            "9.bias", "9.weight",
        ])
        #expect(g.entry("0.weight")?.shape == [256, 100] && g.entry("6.weight")?.shape == [1024, 512] && g.entry("9.weight")?.shape == [784, 1024])
        #expect(shapes(p.nodes["D"]!.stage.parameters) == [
            "1.weight": [512, 784], "1.bias": [512], "3.weight": [256, 512], "3.bias": [256], "5.weight": [1, 256], "5.bias": [1],
        ])
    }

    @Test func mlpGeneratorTakesSpatialLatents() throws {
        let p = try check(generator: #""type": "generator.mlp", "hidden": [32], "size": 8, "ema": 0.9"#,
                          discriminator: #""type": "discriminator.mlp", "hidden": [16], "norm": "spectral""#,
                          latent: #""dim": 10, "spatial": true"#, images: #""size": 8"#)
        #expect(p.outputType(Wire(stage: "G", port: "images")) == .tensor([4, 1, 8, 8]))
    }

    @Test func misconfiguredModelsAreReported() {
        let base = #""z": { "type": "noise.normal", "dim": 16, "batch": 2 }, "data": { "type": "test.images", "batch": 2, "size": 32 },"#
        #expect(problems(stages: base + #""G": { "type": "generator.dcgan", "input": "z.samples", "preset": "notebook28", "resolution": 32 }"#)
                == ["$.stages.G.resolution: preset 'notebook28' makes 28x28 images, not 32"])
        #expect(problems(stages: base + #""G": { "type": "generator.dcgan", "input": "z.samples", "resolution": 24, "depth": 4 }"#)
                == ["$.stages.G.depth: DCGAN resolution 24 is not divisible by 2^4 (depth 4)"])
        #expect(problems(stages: base + #""D": { "type": "discriminator.dcgan", "input": "data.images", "preset": "classic64" }"#)
                == ["$.stages.D.input: preset 'classic64' takes 64x64 images, found tensor [2, 1, 32, 32]"])
    }

    @Test func sampleEvaluationsUseTheMovingAverage() throws {
        let p = try pipeline(stages: """
            "z": { "type": "noise.normal", "batch": 4, "dim": 8 },
            "data": { "type": "test.images", "batch": 4, "size": 8 },
            "G": { "type": "generator.mlp", "input": "z.samples", "hidden": [16], "size": 8, "ema": 0.5 },
            "D": { "type": "discriminator.mlp", "inputs": { "real": "data.images", "fake": "G.images" }, "hidden": [16] },
            "loss": { "type": "loss.nonsaturating", "real": "D.real", "fake": "D.fake" },
            "optD": { "type": "optimizer.sgd", "minimize": "loss.discriminator", "parameters": "D", "lr": 0.1 },
            "optG": { "type": "optimizer.sgd", "minimize": "loss.generator", "parameters": "G", "lr": 0.1 }
            """)
        let g = stage(p, "G", as: MLPGeneratorStage.self)
        let e = Evaluator(pipeline: p, kind: .serial)
        func live() -> [Float] { g.parameters.flatMap { $0.1.scalars } }
        func average() throws -> [Float] {
            let sd = try g.stateDict(ema: true)
            return try g.parameters.flatMap { try sd.tensor($0.0).scalars }
        }
        var expected = live()
        #expect(try average() == expected, "the average starts as a copy")
        for index in 0..<3 {
            _ = try e.evaluate(["optD": ["update"]], step: index + 1, index: 2 * index, mode: .train)
            #expect(try average() == expected, "D's update leaves G's average alone")
            _ = try e.evaluate(["optG": ["update"]], step: index + 1, index: 2 * index + 1, mode: .train)
            let now = live()
            #expect(now != expected)
            expected = zip(expected, now).map { 0.5 * $0 + 0.5 * $1 }
            #expect(maxAbsDifference(try average(), expected) < 1e-6)
        }
        // Sample evaluations draw through the average; training ones through the live weights.
        var rng = PhiloxRandom(seed: 99)
        let z = Tensor(randomNormal: [4, 8], using: &rng)
        let sampled = try g.generate(z).scalars
        let liveOut = try withoutGradients { try g.evaluate(Evaluation(outputs: ["images"], inputs: ["input": .tensor(z)], step: 1,
                                                                        index: 0, mode: .train, seed: 0, stageID: "G")) }
        #expect(sampled != liveOut["images"]!.tensor!.scalars)
        let viaSample = try withoutGradients { try g.evaluate(Evaluation(outputs: ["images"], inputs: ["input": .tensor(z)], step: 1,
                                                                          index: 0, mode: .sample, seed: 0, stageID: "G")) }
        #expect(sampled == viaSample["images"]!.tensor!.scalars)
    }
}

