import Foundation
import NeuralNet
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

@Suite struct MetricStageTests {
    static let images = fixture("idx/t10k-256-images-idx3-ubyte.gz"), labels = fixture("idx/t10k-256-labels-idx1-ubyte.gz")

    /// A small DCGAN on the IDX fixture with every metric: the features of 40 samples (from G's
    /// moving average) against the first 100 test items, every 2 steps; the balance monitor in D's phase.
    static func stages(weights: String) -> String {
        """
        "data": { "type": "dataset.idx", "images": "\(images)", "batch": 8, "size": 32, "fit": "pad" },
        "test": { "type": "dataset.idx", "images": "\(images)", "labels": "\(labels)", "batch": 8, "shuffle": false },
        "z": { "type": "noise.normal", "batch": 8, "dim": 16 },
        "G": { "type": "generator.dcgan", "input": "z.samples", "resolution": 32, "width": 8, "ema": 0.5 },
        "D": { "type": "discriminator.dcgan", "inputs": { "real": "data.images", "fake": "G.images" }, "width": 8 },
        "loss": { "type": "loss.nonsaturating", "real": "D.real", "fake": "D.fake" },
        "optD": { "type": "optimizer.adam", "minimize": "loss.discriminator", "parameters": "D" },
        "optG": { "type": "optimizer.adam", "minimize": "loss.generator", "parameters": "G" },
        "balance": { "type": "metric.balance", "real": "D.real", "fake": "D.fake" },
        "features": { "type": "features.classifier", "weights": "\(weights)", "generator": "G", "reference": "test",
                      "count": 40, "referenceCount": 100, "chunk": 32 },
        "fid": { "type": "metric.fid", "real": "features.real", "fake": "features.fake", "every": 2 },
        "kid": { "type": "metric.kid", "real": "features.real", "fake": "features.fake", "subsets": 4, "subsetSize": 20, "every": 2 },
        "pr": { "type": "metric.precisionrecall", "real": "features.real", "fake": "features.fake", "every": 2 },
        "modes": { "type": "metric.modes", "logits": "features.fakeLogits", "every": 2 }
        """
    }

    static let schedule = #"[{ "run": ["optD", "balance"] }, { "run": "optG" }]"#

    @Test func metricsRunEveryNStepsAndAtTheEnd() throws {
        let dir = temporaryDirectory("metrics")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeClassifierWeights(to: dir + "/c.safetensors")
        let p = try pipeline(stages: Self.stages(weights: dir + "/c.safetensors"), schedule: Self.schedule, steps: 3)
        #expect(p.warnings.isEmpty, "\(p.warnings)")
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        let summary = try Runner(pipeline: p, options: options).run()
        let lines = try ClassifierStageTests.metricsLines(dir)
        let keys = ["fid.distance", "kid.mean", "kid.std", "pr.precision", "pr.recall", "modes.modes", "modes.kl"]
        for key in keys {
            #expect(lines.filter { $0[key] != nil }.map { $0["step"] as! Int } == [2, 3], "\(key)")
            #expect(summary.finalScalars[key]?.isFinite == true, "\(key)")
        }
        // The balance monitor runs with D's training phase, every step.
        #expect(lines.allSatisfy { ($0["balance.real"] as? Double).map { (0...1).contains($0) } == true })
        #expect(lines.allSatisfy { $0["balance.fake"] != nil })
        let final = summary.finalScalars
        #expect(final["fid.distance"]! > 0)
        #expect((0...1).contains(final["pr.precision"]!) && (0...1).contains(final["pr.recall"]!))
        #expect((1...10).contains(final["modes.modes"]!))
        #expect(final["modes.kl"]! >= 0 && final["modes.kl"]! <= Foundation.log(10) + 1e-6)
        // What the features stage reads: G's moving average, not its weights.
        let features = stage(p, "features", as: ClassifierFeaturesStage.self)
        let g = stage(p, "G", as: DCGANGeneratorStage.self)
        var rng = PhiloxRandom(seed: 1, stream: stableHash("features/features"))
        let z = Tensor(randomNormal: g.latentShape, using: &rng)
        let fromAverage = try features.extractor(FeatureSets.asSaved(try g.generate(z, movingAverage: true))).features
        let fromWeights = try features.extractor(FeatureSets.asSaved(try g.generate(z, movingAverage: false))).features
        let fake = try features.fakeFeatures().features
        #expect(Array(fake.scalars.prefix(8 * 16)) == fromAverage.scalars)
        #expect(Array(fake.scalars.prefix(8 * 16)) != fromWeights.scalars)
    }

    /// Generated images are measured as an 8-bit PNG holds them: values outside [-1, 1] (a
    /// generator without tanh) are clamped, the rest rounded to one of 256 levels.
    @Test func generatedImagesAreMeasuredAsSaved() throws {
        let x = try Tensor(shape: [1, 1, 1, 5], scalars: [-2.5, -1, 0.3, 0.999, 1.7])
        let saved = FeatureSets.asSaved(x).scalars
        let expected: [Float] = [-1, -1, 2 * ((1.3 / 2 * 255 as Float).rounded() / 255) - 1, 1, 1]
        #expect(saved == expected, "\(saved)")
        #expect(FeatureSets.asSaved(FeatureSets.asSaved(x)).scalars == saved)
    }

    @Test func identicalFeatureSetsScoreZeroDistanceAndFullPrecisionAndRecall() throws {
        let dir = temporaryDirectory("metrics-same")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeClassifierWeights(to: dir + "/c.safetensors")
        let same = Self.stages(weights: dir + "/c.safetensors")
            .replacingOccurrences(of: #""real": "features.real", "fake": "features.fake""#, with: #""real": "features.real", "fake": "features.real""#)
        let p = try pipeline(stages: same, schedule: Self.schedule)
        let e = Evaluator(pipeline: p, kind: .serial)
        let values = try e.evaluate(["fid": ["distance"], "pr": ["precision", "recall"], "kid": ["mean", "std"]], step: 2, index: 0, mode: .sample)
        #expect(abs(values[Wire(stage: "fid", port: "distance")]!.number!) < 1e-3)
        // KID is unbiased: on one set against itself its mean over subsets is within its spread of 0.
        let kid = values[Wire(stage: "kid", port: "mean")]!.number!, kidStd = values[Wire(stage: "kid", port: "std")]!.number!
        print("MetricStageTests: KID of a set against itself: \(kid) +- \(kidStd)")
        #expect(abs(kid) <= 2 * kidStd, "KID \(kid) +- \(kidStd)")
        #expect(values[Wire(stage: "pr", port: "precision")]!.number == 1)
        #expect(values[Wire(stage: "pr", port: "recall")]!.number == 1)
        // The reference features are computed once and handed out again.
        let features = stage(p, "features", as: ClassifierFeaturesStage.self)
        #expect(try features.realFeatures().features === features.realFeatures().features)
    }

    @Test func problemsAreReported() throws {
        let dir = temporaryDirectory("metrics-problems")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeClassifierWeights(to: dir + "/c.safetensors")
        let base = Self.stages(weights: dir + "/c.safetensors")
        #expect(problems(stages: base.replacingOccurrences(of: #""generator": "G""#, with: #""generator": "D""#))
                == ["$.stages.features.generator: stage 'D' is not a generator"])
        #expect(problems(stages: base.replacingOccurrences(of: #""reference": "test""#, with: #""reference": "z""#))
                == ["$.stages.features.reference: stage 'z' is not a dataset"])
        #expect(problems(stages: base.replacingOccurrences(of: #""logits": "features.fakeLogits""#, with: #""logits": "loss.generator""#))
                == ["$.stages.modes.logits: expected logits [N, classes] with at least 2 classes, found scalar"])
        #expect(problems(stages: base.replacingOccurrences(of: #""fid": { "type": "metric.fid", "real": "features.real""#,
                                                           with: #""fid": { "type": "metric.fid", "real": "features.realLogits""#))
                == ["$.stages.fid.fake: features of size 16 cannot be compared with real features of size 10"])
        #expect(problems(stages: base.replacingOccurrences(of: #""pr": { "type": "metric.precisionrecall","#,
                                                           with: #""pr": { "type": "metric.precisionrecall", "k": 40,"#))
                == ["$.stages.pr.fake: expected at least 41 feature vectors, found 40"])
        // Weights of another model.
        try stage(try pipeline(stages: ExportTests.stages(), schedule: #"[{ "run": "optD" }]"#), "G", as: DCGANGeneratorStage.self)
            .stateDict(ema: false).write(to: dir + "/g.safetensors")
        let wrong = Self.stages(weights: dir + "/g.safetensors")
        #expect(problems(stages: wrong) == ["$.stages.features.weights: \(dir)/g.safetensors: not the weights of a classifier.cnn (no 2-D tensor '12.weight'); export one with `ganflow export RUN --stage C`"])
    }
}
