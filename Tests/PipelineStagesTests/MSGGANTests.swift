import Foundation
import GANFlowTestSupport
import NeuralNet
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

@Suite struct MSGGANTests {
    static func stages(combine: String = "simple", loss: String = #""type": "loss.rahinge""#, smallest: Int = 4) -> String {
        """
        "data": { "type": "dataset.images", "path": "Fixtures/fashion-mnist", "size": 16, "channels": 1, "batch": 8, "pyramid": \(smallest) },
        "z": { "type": "noise.normal", "dim": 8, "batch": 8 },
        "G": { "type": "generator.msg", "input": "z.samples", "target": 16, "fmapBase": 32, "fmapMax": 8, "ema": 0.9 },
        "D": { "type": "discriminator.msg", "inputs": { "real": "data.pyramid", "fake": "G.pyramid" }, "combine": "\(combine)",
               "fmapBase": 32, "fmapMax": 8 },
        "loss": { \(loss), "real": "D.real", "fake": "D.fake" },
        "optD": { "type": "optimizer.adam", "minimize": "loss.discriminator", "parameters": "D", "lr": 0.003, "betas": [0, 0.99] },
        "optG": { "type": "optimizer.adam", "minimize": "loss.generator", "parameters": "G", "lr": 0.003, "betas": [0, 0.99] },
        "grids": { "type": "sink.pyramid", "input": "G.pyramid", "every": 1, "nrow": 4, "count": 8 }
        """
    }

    static func build(_ stages: String, dir: String) throws -> Pipeline {
        let text = #"{ "name": "msg-test", "seed": 2, "steps": 2, "stages": { \#(stages) }, "schedule": [ { "run": "optD" }, { "run": "optG" } ] }"#
        let doc = try PipelineDocument.parse(text, file: repositoryRoot + "/msg-test.json")
        return try PipelineBuilder(registry: .standard).build(doc, outputDirectory: dir)
    }

    static func problems(_ stages: String) -> [String] {
        do {
            _ = try build(stages, dir: temporaryDirectory("msg-invalid"))
            return []
        } catch let e as PipelineErrors {
            return e.errors.map { "\($0.path): \($0.message)" }
        } catch {
            return ["unexpected: \(error)"]
        }
    }

    static func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = PhiloxRandom(seed: seed)
        return Tensor(randomNormal: shape, using: &rng)
    }

    @Test(arguments: MSGCombine.allCases)
    func combineShapesAndGradients(_ kind: MSGCombine) throws {
        var rng = PhiloxRandom(seed: 3)
        let layer = MSGCombineLayer(kind, imageChannels: 3, features: 4, rng: &rng)
        let image = Self.random([2, 3, 4, 4], seed: 1), features = Self.random([2, 4, 4, 4], seed: 2)
        let out = try withoutGradients { try layer(image: image, features: features) }
        #expect(out.shape == [2, [MSGCombine.simple: 7, .linCat: 8, .catLin: 4][kind]!, 4, 4])
        #expect(layer.outputChannels == out.shape[1])
        if kind == .simple {
            // The image's channels, then the features', unchanged.
            #expect(Array(out.scalars[0..<48]) == Array(image.scalars[0..<48]))
            #expect(Array(out.scalars[48..<112]) == Array(features.scalars[0..<64]))
        }
        let weights = Self.random(out.shape, seed: 4)
        let inputs = [image, features] + layer.namedParameters.map(\.1)
        let f: ([Tensor]) throws -> Tensor = { _ in try (layer(image: image, features: features).tanh() * weights).sum() }
        #expect(try GradientCheck.firstOrderError(inputs, f) < 2e-2)
        #expect(try GradientCheck.secondOrderError([image, features], f) < 2e-2)
    }

    @Test(arguments: MSGCombine.allCases)
    func discriminatorTakesEveryScale(_ kind: MSGCombine) throws {
        var rng = PhiloxRandom(seed: 5)
        let a = try ProGANArchitecture(target: 16, channels: 3, fmapBase: 32, fmapMax: 8)
        let d = MSGDiscriminator(architecture: a, combine: kind, groupSize: 2, rng: &rng)
        let pyramid = [4, 8, 16].enumerated().map { Self.random([4, 3, $1, $1], seed: UInt64($0)).requiringGradients() }
        let scores = try d.forward(pyramid: pyramid)
        #expect(scores.shape == [4])
        // Each scale changes the scores: every image enters the network.
        for i in 0..<3 {
            var other = pyramid
            other[i] = Self.random(pyramid[i].shape, seed: 99)
            #expect(try withoutGradients { try d.forward(pyramid: other) }.scalars != scores.scalars, "scale \(i)")
        }
        let g = try gradients(of: scores.sum(), wrt: pyramid)
        #expect(g.allSatisfy { $0.scalars.contains { $0 != 0 } })
        #expect(throws: TensorError.self) { try d.forward(pyramid: Array(pyramid.dropFirst())) }
    }

    @Test func pyramidsThatDoNotLineUpAreNamedByScale() {
        #expect(Self.problems(Self.stages(smallest: 8)) == [
            "$.stages.D.inputs.fake: scale 0 of 'fake' is [8, 1, 4, 4] but scale 0 of 'real' is [8, 1, 8, 8]; every input needs the same scales",
        ])
        let rgb = Self.stages().replacingOccurrences(of: #""target": 16, "fmapBase""#, with: #""target": 16, "channels": 3, "fmapBase""#)
        #expect(Self.problems(rgb) == [
            "$.stages.D.inputs.fake: scale 0 of 'fake' is [8, 3, 4, 4] but scale 0 of 'real' is [8, 1, 4, 4]; every input needs the same scales",
        ])
        let single = Self.stages().replacingOccurrences(of: #""real": "data.pyramid""#, with: #""real": "data.images""#)
        #expect(Self.problems(single) == [
            "$.stages.D.inputs.real: expected a pyramid of images (a generator.msg's or dataset's 'pyramid'), found tensor [8, 1, 16, 16]",
        ])
    }

    @Test func realPyramidIsAveragePooling() throws {
        let p = try Self.build(Self.stages(), dir: temporaryDirectory("msg-pool"))
        let out = try p.stage("data").run(["images", "pyramid"])
        let images = out["images"]!.tensor!
        guard case .pyramid(let levels)? = out["pyramid"] else { Issue.record("no pyramid"); return }
        #expect(levels.map(\.shape) == [[8, 1, 4, 4], [8, 1, 8, 8], [8, 1, 16, 16]])
        #expect(levels[2].scalars == images.scalars)
        // Repeated 2x2 average pooling, exactly; one pooling by 2^k, to rounding.
        #expect(try levels[1].scalars == images.avgPool2d(kernel: 2).scalars)
        #expect(try levels[0].scalars == images.avgPool2d(kernel: 2).avgPool2d(kernel: 2).scalars)
        #expect(maxAbsDifference(levels[0].scalars, try images.avgPool2d(kernel: 4).scalars) < 1e-6)
    }

    @Test func consistencyIsZeroForARealPyramidAndMeasuresDisagreement() throws {
        let metric = #""real": { "type": "metric.pyramid", "input": "data.pyramid" }, "fake": { "type": "metric.pyramid", "input": "G.pyramid", "critic": "D" }"#
        let p = try Self.build(Self.stages() + ", " + metric, dir: temporaryDirectory("msg-consistency"))
        #expect(p.nodes["real"]!.stage.outputs.keys.sorted() == ["measured", "scale4", "scale8"])
        #expect(p.nodes["fake"]!.stage.outputs.keys.sorted() == ["grad16", "grad4", "grad8", "measured", "scale4", "scale8"])
        let values = try Evaluator(pipeline: p, kind: .serial).evaluate(["real": ["scale4", "scale8"], "fake": ["scale4", "scale8", "grad4", "grad8", "grad16"]],
                                                                         step: 1, index: 0, mode: .train)
        func value(_ stage: String, _ port: String) -> Float { values[Wire(stage: stage, port: port)]!.tensor!.scalars[0] }
        #expect(value("real", "scale4") == 0 && value("real", "scale8") == 0)
        // An untrained generator's coarse images have nothing to do with its finest one.
        for side in ["scale4", "scale8"] { #expect(value("fake", side) > 0.1, "\(side)") }
        // D's score depends on every scale, so each gets a gradient.
        for side in ["grad4", "grad8", "grad16"] { #expect(value("fake", side) > 0 && value("fake", side).isFinite, "\(side)") }
        // By hand: a coarse image equal to the pooled one plus a constant c differs by c^2 per
        // pixel, against the pooled image's own variance.
        let b: [Float] = [1, 2, 3, 4, 0, 0, 0, 2], a = b.map { $0 + 0.5 }
        #expect(abs(PyramidConsistencyMetricStage.disagreement(a, b, batch: 2) - (0.25 / 1.25 + 0.25 / 0.75) / 2) < 1e-12)
        #expect(Self.problems(Self.stages() + #", "m": { "type": "metric.pyramid", "input": "data.images" }"#) == [
            "$.stages.m.input: expected a pyramid of images (a generator.msg's 'pyramid'), found tensor [8, 1, 16, 16]",
        ])
        #expect(Self.problems(Self.stages() + #", "m": { "type": "metric.pyramid", "input": "G.pyramid", "critic": "loss" }"#) == [
            "$.stages.m.critic: stage 'loss' is not a discriminator of pyramids (discriminator.msg)",
        ])
    }

    @Test func gradientsReachEveryGeneratorBlockAfterOneStep() throws {
        let dir = temporaryDirectory("msg-step")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try Self.build(Self.stages(), dir: dir)
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        options.stepsOverride = 1
        _ = try Runner(pipeline: p, options: options).run()
        let values = try Evaluator(pipeline: p, kind: .serial).evaluate(["loss": ["generator"]], step: 2, index: 10, mode: .train)
        let loss = values[Wire(stage: "loss", port: "generator")]!.tensor!
        let params = p.stage("G").parameters
        let grads = try gradients(of: loss, wrt: params.map(\.1))
        var norms: [String: Float] = [:]
        for ((name, _), g) in zip(params, grads) {
            let group = name.split(separator: ".").prefix(2).joined(separator: ".")
            norms[group, default: 0] += g.scalars.map { $0 * $0 }.reduce(0, +)
        }
        #expect(Set(norms.keys) == ["blocks.0", "blocks.1", "blocks.2", "toRGB.0", "toRGB.1", "toRGB.2"])
        for (group, n) in norms { #expect(n > 0, "\(group) got no gradient") }
        #expect(try pngHeader(dir + "/samples/step-00000001.png") == [3 * 74 + 2 * 8, 38, 1, 8])
    }

    @Test func wgangpInterpolatesEveryScaleWithOneEpsilon() throws {
        let real = [Self.random([3, 1, 2, 2], seed: 1), Self.random([3, 1, 4, 4], seed: 2)]
        let fake = [Self.random([3, 1, 2, 2], seed: 3), Self.random([3, 1, 4, 4], seed: 4)]
        let epsilon = try Tensor(shape: [3], scalars: [0, 0.5, 1])
        let w = [Self.random([1, 1, 2, 2], seed: 5), Self.random([1, 1, 4, 4], seed: 6)]
        var seen: [Tensor] = []
        // A linear critic: the gradient at every point is w, of norm sqrt(|w0|^2 + |w1|^2).
        let p = try GradientPenalty.wgangp(critic: { xs in
            seen = xs.map { $0.detached() }
            return try (xs[0] * w[0]).sum(axes: [1, 2, 3]) + (xs[1] * w[1]).sum(axes: [1, 2, 3])
        }, real: real, fake: fake, epsilon: epsilon)
        let norm = (w.flatMap(\.scalars).map { $0 * $0 }.reduce(0, +) + 1e-12).squareRoot()
        #expect(abs(p.item() - (norm - 1) * (norm - 1)) < 1e-4)
        for s in 0..<2 {
            let n = real[s].count / 3
            for i in 0..<3 {
                let e = epsilon.scalars[i]
                for j in 0..<n {
                    let expected = e * real[s].scalars[i * n + j] + (1 - e) * fake[s].scalars[i * n + j]
                    #expect(abs(seen[s].scalars[i * n + j] - expected) < 1e-6)
                }
            }
        }
    }

    @Test func wgangpOverAPyramidTrainsThroughTheLossStage() throws {
        let loss = #""type": "loss.wgangp", "critic": "D", "realImages": "data.pyramid", "fakeImages": "G.pyramid", "drift": 0.001"#
        let dir = temporaryDirectory("msg-gp")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try Self.build(Self.stages(combine: "cat_lin", loss: loss), dir: dir)
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        let summary = try Runner(pipeline: p, options: options).run()
        #expect(summary.finalScalars["loss.penalty"].map { $0.isFinite && $0 > 0 } == true)
        let wrong = #""type": "loss.wgangp", "critic": "D", "realImages": "data.images", "fakeImages": "G.images""#
        #expect(Self.problems(Self.stages(loss: wrong)) == [
            "$.stages.loss.realImages: penalty 'gp' needs 'realImages', the pyramid D saw (found tensor [8, 1, 16, 16])",
        ])
    }
}

/// The MSG-GAN pipelines (validated with every pipeline file) train a few steps on the fixtures.
@Suite struct MSGGANPipelineFileTests {
    static let files = ["msggan-fashion", "msggan-rgb64"]

    @Test(arguments: files)
    func runsOnFixtures(_ name: String) throws {
        let target = name == "msggan-fashion" ? 32 : 64, scales = name == "msggan-fashion" ? 4 : 5
        let (dir, summary) = try PipelineFileTests.runOnFixtures(name, steps: 2, overrides: ["D.combine=cat_lin"])
        // The scales' agreement and D's gradient at every scale are logged (at the last step).
        #expect(summary.finalScalars["consistency.scale4"].map { $0 > 0 } == true)
        #expect(summary.finalScalars["consistency.grad\(target)"].map { $0 > 0 } == true)
        let cell = 4 * (target + 2) + 2
        #expect(try pngHeader(dir + "/samples/step-00000002.png")[0...1] == [scales * cell + (scales - 1) * 8, 2 * (target + 2) + 2])
        let (_, g) = try TrainedRun(dir).generator(nil, registry: .standard)
        #expect(try g.samples(count: 3, seed: 1).shape[2] == target)
    }
}
