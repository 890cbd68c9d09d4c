import Foundation
import PipelineGraph
import PipelineStages
import Testing
import TensorRuntime

@Suite struct OptimizerStageTests {
    /// A small MLP GAN on random 8x8 images with the given optimizer settings for both networks.
    static func stages(_ optimizer: String, ema: Bool = false) -> String {
        """
        "z": { "type": "noise.normal", "batch": 4, "dim": 8 },
        "data": { "type": "test.images", "batch": 4, "size": 8 },
        "G": { "type": "generator.mlp", "input": "z.samples", "hidden": [16], "size": 8\(ema ? #", "ema": 0.9"# : "") },
        "D": { "type": "discriminator.mlp", "inputs": { "real": "data.images", "fake": "G.images" }, "hidden": [16] },
        "loss": { "type": "loss.nonsaturating", "real": "D.real", "fake": "D.fake" },
        "optD": { \(optimizer), "minimize": "loss.discriminator", "parameters": "D" },
        "optG": { \(optimizer), "minimize": "loss.generator", "parameters": "G" }
        """
    }

    func run(_ p: Pipeline, in dir: String, steps: Int, resume: Bool = false) throws {
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        options.resume = resume
        options.stepsOverride = steps
        options.scheduler = .serial
        _ = try Runner(pipeline: p, options: options).run()
    }

    func weights(_ p: Pipeline) -> [Float] {
        ["G", "D"].flatMap { p.nodes[$0]!.stage.parameters.flatMap { $0.1.scalars } }
    }

    static let optimizers = [
        #""type": "optimizer.adam", "lr": 0.001"#,
        #""type": "optimizer.adamw", "lr": 0.001, "weightDecay": 0.1"#,
        #""type": "optimizer.sgd", "lr": 0.05, "momentum": 0.9, "nesterov": true"#,
        #""type": "optimizer.rmsprop", "lr": 0.001, "momentum": 0.5, "centered": true"#,
        #""type": "optimizer.sgd", "lr": 0.05, "momentum": 0.5, "schedule": { "type": "step", "stepSize": 1, "gamma": 0.5 }"#,
    ]

    /// Two steps, a checkpoint, two more in a new process-like pipeline: the same weights as four
    /// steps straight, so moments, step counts and the moving average all went through the checkpoint.
    @Test(arguments: optimizers)
    func stateSurvivesACheckpoint(_ optimizer: String) throws {
        let straight = try pipeline(stages: Self.stages(optimizer, ema: true), steps: 4)
        let dirA = temporaryDirectory("opt-a"), dirB = temporaryDirectory("opt-b")
        defer { try? FileManager.default.removeItem(atPath: dirA); try? FileManager.default.removeItem(atPath: dirB) }
        try run(straight, in: dirA, steps: 4)

        try run(try pipeline(stages: Self.stages(optimizer, ema: true), steps: 4), in: dirB, steps: 2)
        let resumed = try pipeline(stages: Self.stages(optimizer, ema: true), steps: 4)
        try run(resumed, in: dirB, steps: 4, resume: true)
        #expect(weights(resumed) == weights(straight))
        #expect(weights(resumed) != weights(try pipeline(stages: Self.stages(optimizer, ema: true))), "training changed the weights")
        let g = stage(resumed, "G", as: MLPGeneratorStage.self), g0 = stage(straight, "G", as: MLPGeneratorStage.self)
        #expect(try g.stateDict(ema: true).entry("0.weight") != nil)
        #expect(try g.stateDict(ema: true).tensor("0.weight").scalars == g0.stateDict(ema: true).tensor("0.weight").scalars)
    }

    /// `lr` reports the rate of the next update, from the updates taken so far.
    @Test(arguments: [
        (#"{ "type": "step", "stepSize": 2, "gamma": 0.5 }"#, [0.1, 0.1, 0.05, 0.05, 0.025] as [Float]),
        (#"{ "type": "linear", "start": 1, "end": 3, "finalFactor": 0.2 }"#, [0.1, 0.1, 0.06, 0.02, 0.02]),
        (#""constant""#, [0.1, 0.1, 0.1, 0.1, 0.1]),
    ])
    func schedulesSetTheRate(_ schedule: String, _ rates: [Float]) throws {
        let p = try pipeline(stages: Self.stages(#""type": "optimizer.sgd", "lr": 0.1, "schedule": \#(schedule)"#))
        let e = Evaluator(pipeline: p, kind: .serial)
        var seen: [Float] = []
        for i in 0..<5 {
            let values = try e.evaluate(["optD": ["update", "lr"]], step: i + 1, index: i, mode: .train)
            seen.append(values[Wire(stage: "optD", port: "lr")]!.tensor!.item())
        }
        #expect(maxAbsDifference(seen, rates) < 1e-7)
    }

    @Test func theRateIsTheStepSize() throws {
        // Plain SGD: the change of every weight is -lr * gradient, with lr from the schedule.
        let p = try pipeline(stages: Self.stages(#""type": "optimizer.sgd", "lr": 0.1, "schedule": { "type": "step", "stepSize": 1, "gamma": 0.5 }"#))
        let e = Evaluator(pipeline: p, kind: .serial)
        let d = p.nodes["D"]!.stage
        for (i, lr) in [Float(0.1), 0.05, 0.025].enumerated() {
            let before = d.parameters.map { $0.1.copy() }
            let values = try e.evaluate(["loss": ["discriminator"]], step: i + 1, index: i, mode: .train)
            let grads = try gradients(of: values[Wire(stage: "loss", port: "discriminator")]!.tensor!, wrt: d.parameters.map(\.1))
            _ = try e.evaluate(["optD": ["update"]], step: i + 1, index: i, mode: .train)
            for (k, (_, w)) in d.parameters.enumerated() {
                let expected = zip(before[k].scalars, grads[k].scalars).map { $0 - lr * $1 }
                #expect(maxAbsDifference(w.scalars, expected) < 1e-6)
            }
        }
    }

    /// One update with `lrFactors`: a parameter with factor f moves as under `lr` times f, the
    /// others as without factors (the first matching pattern wins, unmatched names keep 1).
    @Test(arguments: optimizers.prefix(4))
    func rateFactorsScaleTheirParameters(_ optimizer: String) throws {
        func updatedD(_ settings: String, lrFactor: Double = 1) throws -> [String: [Float]] {
            let scaled = optimizer.replacingOccurrences(of: #""lr": 0.001"#, with: #""lr": \#(0.001 * lrFactor)"#)
                .replacingOccurrences(of: #""lr": 0.05"#, with: #""lr": \#(0.05 * lrFactor)"#)
            let p = try pipeline(stages: Self.stages(scaled + settings))
            _ = try Evaluator(pipeline: p, kind: .serial).evaluate(["optD": ["update"]], step: 1, index: 0, mode: .train)
            return Dictionary(uniqueKeysWithValues: p.nodes["D"]!.stage.parameters.map { ($0.0, $0.1.scalars) })
        }
        let grouped = try updatedD(#", "lrFactors": { "1.bias": 0, "*.bias": 3, "1.*": 3 }"#)
        let plain = try updatedD(""), tripled = try updatedD("", lrFactor: 3)
        let initial = Dictionary(uniqueKeysWithValues: try pipeline(stages: Self.stages(optimizer)).nodes["D"]!.stage.parameters.map { ($0.0, $0.1.scalars) })
        #expect(Set(grouped.keys) == ["1.weight", "1.bias", "3.weight", "3.bias"])
        #expect(grouped["1.bias"] == initial["1.bias"])
        for name in ["1.weight", "3.bias"] { #expect(maxAbsDifference(grouped[name]!, tripled[name]!) < 1e-7, "\(name)") }
        #expect(grouped["3.weight"] == plain["3.weight"])
        #expect(grouped["1.weight"] != plain["1.weight"])
    }

    @Test func skippedUpdatesLeaveWeightsAndAverageAlone() throws {
        let p = try pipeline(stages: Self.stages(#""type": "optimizer.sgd", "lr": 0.1, "skipBelow": 1000"#, ema: true))
        let before = weights(p)
        let e = Evaluator(pipeline: p, kind: .serial)
        var skipped: Float = 0
        for i in 0..<3 {
            let v = try e.evaluate(["optG": ["update", "skipped"]], step: i + 1, index: i, mode: .train)
            skipped = v[Wire(stage: "optG", port: "skipped")]!.tensor!.item()
        }
        #expect(skipped == 1)
        #expect(weights(p) == before)
        let g = stage(p, "G", as: MLPGeneratorStage.self)
        #expect(try g.stateDict(ema: true).tensor("0.weight").scalars == g.stateDict(ema: false).tensor("0.weight").scalars)
    }

    @Test func badSettingsAreReported() {
        func optD(_ s: String) -> [String] {
            problems(stages: Self.stages(#""type": "optimizer.sgd", \#(s)"#).replacingOccurrences(of: "\"optG\": { \"type\": \"optimizer.sgd\", \(s),", with: "\"optG\": { \"type\": \"optimizer.sgd\","))
        }
        #expect(optD(#""nesterov": true"#) == ["$.stages.optD: sgd: nesterov needs momentum > 0 and dampening 0"])
        #expect(optD(#""schedule": "cosine""#)
                == [#"$.stages.optD.schedule: expected "constant" or an object with a 'type' (constant, step, linear), found "cosine""#])
        #expect(optD(#""schedule": { "type": "step" }"#) == ["$.stages.optD.schedule: missing 'stepSize'"])
        #expect(optD(#""schedule": { "type": "step", "stepSize": 0 }"#) == ["$.stages.optD.schedule: schedule: stepSize must be positive, got 0"])
        #expect(optD(#""schedule": { "type": "linear", "start": 5, "end": 3 }"#)
                == ["$.stages.optD.schedule: schedule: linear decay needs 0 <= start < end, got start 5 and end 3"])
        #expect(optD(#""schedule": { "type": "step", "stepSize": 2, "gama": 0.5 }"#)
                == ["$.stages.optD.schedule: unknown key 'gama' in the schedule; it takes type, stepSize, gamma"])
        #expect(optD(#""lr": 0.1, "lrFactors": { "*.gain.weight": 10 }"#) == ["$.stages.optD.lrFactors: '*.gain.weight' matches no parameter"])
        #expect(optD(#""lr": 0.1, "lrFactors": { "*.bias": -1 }"#)
                == ["$.stages.optD.lrFactors: factor of '*.bias': expected a number of at least 0, found -1"])
        #expect(optD(#""lr": 0.1, "lrFactors": [10]"#) == ["$.stages.optD.lrFactors: expected an object of factors by parameter-name pattern, found [10]"])
    }
}
