import Foundation
import GANFlowTestSupport
import NeuralNet
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

@Suite struct ProGANStageTests {
    /// A 4 -> 16 pipeline on the Fashion-MNIST PNG fixtures: 16 images at 4x4, then 8x8 fading in
    /// over 32 images, 16 stable, 16x16 fading in over 32, ...
    static func stages(batch16: Int = 8, groupSize: Int = 4, start: Int = 4) -> String {
        """
        "grow": { "type": "schedule.progressive", "start": \(start), "target": 16, "stabilizeKimg": 0.016, "transitionKimg": 0.032,
                  "batch": 8, "batchByResolution": { "16": \(batch16) }, "lr": 0.002, "lrByResolution": { "8": 0.001 } },
        "data": { "type": "dataset.images", "path": "Fixtures/fashion-mnist", "size": 16, "channels": 1, "batch": 8,
                  "resolution": "grow.resolution", "servedBatch": "grow.batch" },
        "fade": { "type": "transform.fade", "input": "data.images", "alpha": "grow.alpha" },
        "z": { "type": "noise.normal", "dim": 8, "batch": 8, "servedBatch": "grow.batch" },
        "G": { "type": "generator.progan", "input": "z.samples", "target": 16, "resolution": "grow.resolution",
               "alpha": "grow.alpha", "fmapBase": 32, "fmapMax": 8, "ema": 0.9 },
        "D": { "type": "discriminator.progan", "inputs": { "real": "fade.images", "fake": "G.images" }, "groupSize": \(groupSize),
               "resolution": "grow.resolution", "alpha": "grow.alpha", "fmapBase": 32, "fmapMax": 8 },
        "loss": { "type": "loss.wgangp", "real": "D.real", "fake": "D.fake", "drift": 0.001,
                  "critic": "D", "realImages": "fade.images", "fakeImages": "G.images" },
        "optD": { "type": "optimizer.adam", "minimize": "loss.discriminator", "parameters": "D", "betas": [0, 0.99],
                  "lrInput": "grow.lr", "resetOn": "grow.phase" },
        "optG": { "type": "optimizer.adam", "minimize": "loss.generator", "parameters": "G", "betas": [0, 0.99],
                  "lrInput": "grow.lr", "resetOn": "grow.phase" },
        "grid": { "type": "sink.grid", "input": "G.images", "every": 2, "upscale": 16,
                  "tags": { "resolution": "grow.resolution", "alpha": "grow.alpha" } }
        """
    }

    static func build(_ stages: String = stages(), steps: Int = 5, dir: String) throws -> Pipeline {
        let text = #"{ "name": "progan-test", "seed": 4, "steps": \#(steps), "stages": { \#(stages) }, "schedule": [ { "run": "optD" }, { "run": "optG" } ] }"#
        let doc = try PipelineDocument.parse(text, file: repositoryRoot + "/progan-test.json")
        return try PipelineBuilder(registry: .standard).build(doc, outputDirectory: dir)
    }

    static func run(_ p: Pipeline, dir: String, steps: Int? = nil, resume: Bool = false) throws -> RunSummary {
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        options.resume = resume
        options.stepsOverride = steps
        return try Runner(pipeline: p, options: options).run()
    }

    static func problems(_ stages: String) -> [String] {
        do {
            _ = try build(stages, dir: temporaryDirectory("progan-invalid"))
            return []
        } catch let e as PipelineErrors {
            return e.errors.map { "\($0.path): \($0.message)" }
        } catch {
            return ["unexpected: \(error)"]
        }
    }

    @Test func scheduleFollowsImagesShown() throws {
        let p = try Self.build(dir: temporaryDirectory("progan-schedule"))
        let grow = p.stage("grow") as! ProgressiveScheduleStage
        typealias P = ProgressiveScheduleStage.Position
        #expect(grow.position(afterImages: 0) == P(resolution: 4, alpha: 1, phase: 0))
        #expect(grow.position(afterImages: 15) == P(resolution: 4, alpha: 1, phase: 0))
        #expect(grow.position(afterImages: 16) == P(resolution: 8, alpha: 0, phase: 1))
        #expect(grow.position(afterImages: 24) == P(resolution: 8, alpha: 0.25, phase: 1))
        #expect(grow.position(afterImages: 48) == P(resolution: 8, alpha: 1, phase: 2))
        #expect(grow.position(afterImages: 64) == P(resolution: 16, alpha: 0, phase: 3))
        #expect(grow.position(afterImages: 96) == P(resolution: 16, alpha: 1, phase: 4))
        #expect(grow.position(afterImages: 1_000_000) == P(resolution: 16, alpha: 1, phase: 4))
        #expect(grow.scenarios.map(\.label) == ["resolution 4", "resolution 8", "resolution 16"])
        // Steps: 8 images each; every evaluation of a step sees the same values.
        var seen: [(Int, Float, Int, Float)] = []
        for step in 1...6 {
            for _ in 0..<2 {
                let out = try grow.run(["resolution", "alpha", "batch", "lr"], step: step, stageID: "grow")
                seen.append((out["resolution"]!.number.map(Int.init)!, Float(out["alpha"]!.number!),
                             out["batch"]!.number.map(Int.init)!, Float(out["lr"]!.number!)))
            }
        }
        let steps = stride(from: 0, to: seen.count, by: 2).map { seen[$0] }
        #expect(steps.map(\.0) == [4, 4, 8, 8, 8, 8])
        #expect(steps.map(\.1) == [1, 1, 0, 0.25, 0.5, 0.75])
        #expect(steps.map(\.3) == [0.002, 0.002, 0.001, 0.001, 0.001, 0.001])
        #expect(zip(seen, seen.dropFirst()).enumerated().allSatisfy { $0.offset % 2 == 1 || $0.element.0 == $0.element.1 })
    }

    @Test func validationChecksEveryResolutionTheScheduleVisitsAndNamesIt() {
        #expect(Self.problems(Self.stages(batch16: 6)) == [
            "$.stages.D.inputs.real: at resolution 16 (from 'grow'): MinibatchStddev: batch size 6 is not a multiple of the group size 4",
        ])
        #expect(Self.problems(Self.stages(batch16: 16)) == [
            "$.stages.data.servedBatch: at resolution 16 (from 'grow'): a served batch of 16 needs 1 to 'batch' (8) images",
        ])
        #expect(Self.problems(Self.stages(start: 2)) == [
            "$.stages.G.resolution: at resolution 2 (from 'grow'): resolution 2 is not one of this network's 4, 8, 16",
        ])
        let misWired = Self.stages().replacingOccurrences(of: #""alpha": "grow.alpha", "fmapBase": 32, "fmapMax": 8, "ema""#,
                                                          with: #""alpha": "grow.batch", "fmapBase": 32, "fmapMax": 8, "ema""#)
        #expect(Self.problems(misWired) == ["$.stages.G.alpha: expected a scalar, found integer"])
    }

    @Test func trainsAcrossAResolutionChangeWithFadedRealsAndTaggedGrids() throws {
        let dir = temporaryDirectory("progan-run")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try Self.build(dir: dir)
        let summary = try Self.run(p, dir: dir)
        #expect(summary.finalScalars["loss.discriminator"]?.isFinite == true)
        #expect(summary.finalScalars["grow.alpha"] == 0.5)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/samples").sorted()
        #expect(files == ["step-00000002-resolution4-alpha1.000.png", "step-00000004-resolution8-alpha0.250.png",
                          "step-00000005-resolution8-alpha0.500.png"])
        #expect(try pngHeader(dir + "/samples/" + files[2]) == [146, 20, 1, 8])
        // Adam was reset when 8x8 appeared (phase 0 -> 1): two updates since, at 8x8's rate.
        let optD = p.stage("optD") as! OptimizerStage<AdamRecipe>
        #expect(optD.resets == 1 && optD.optimizer.stepCount == 3)
        #expect(optD.optimizer.learningRate == Double(Float(0.001)))
        let g = p.stage("G") as! ProGANGeneratorStage
        #expect(g.current.resolution == 8 && g.current.alpha == 0.5)
        #expect(try g.generate(Tensor(zeros: [3, 8])).shape == [3, 1, 8, 8])
    }

    /// FID during growth: a generator at 4x4 of a 16x16 target is measured on its images enlarged
    /// to 16x16 (nearest), not on 4x4 images padded to the classifier's 28x28.
    @Test func featuresOfAGrowingGeneratorAreTakenAtItsTargetSize() throws {
        let dir = temporaryDirectory("progan-features")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeClassifierWeights(to: dir + "/c.safetensors")
        let images = fixture("idx/t10k-256-images-idx3-ubyte.gz")
        let stages = Self.stages() + """
            ,
            "test": { "type": "dataset.idx", "images": "\(images)", "batch": 8, "shuffle": false },
            "features": { "type": "features.classifier", "weights": "\(dir)/c.safetensors", "generator": "G", "reference": "test",
                          "count": 12, "referenceCount": 20 },
            "fid": { "type": "metric.fid", "real": "features.real", "fake": "features.fake", "every": 1 }
            """
        let p = try Self.build(stages, steps: 1, dir: dir)
        let summary = try Self.run(p, dir: dir)
        #expect(summary.finalScalars["fid.distance"]?.isFinite == true)
        let g = p.stage("G") as! ProGANGeneratorStage
        #expect(g.current.resolution == 4)
        let features = p.stage("features") as! ClassifierFeaturesStage
        var rng = PhiloxRandom(seed: 4, stream: stableHash("features/features"))
        let z = Tensor(randomNormal: g.latentShape, using: &rng)
        let small = try g.generate(z)
        #expect(small.shape == [8, 1, 4, 4])
        let enlarged = try features.extractor(FeatureSets.asSaved(try small.upsampleNearest(factor: 4))).features
        let padded = try features.extractor(FeatureSets.asSaved(small)).features
        let fake = try features.fakeFeatures().features
        #expect(Array(fake.scalars.prefix(enlarged.count)) == enlarged.scalars)
        #expect(Array(fake.scalars.prefix(padded.count)) != padded.scalars)
    }

    @Test func fadeCrossesTheRealImagesWithTheirPooledSelves() throws {
        let p = try Self.build(dir: temporaryDirectory("progan-fade"))
        let fade = p.stage("fade")
        var rng = PhiloxRandom(seed: 1)
        let x = Tensor(randomNormal: [2, 1, 8, 8], using: &rng)
        let low = try x.downsampleArea(factor: 2).upsampleNearest(factor: 2)
        func faded(_ a: Float) throws -> [Float] {
            try fade.run(["images"], inputs: ["input": .tensor(x), "alpha": .scalar(Tensor(a))], stageID: "fade")["images"]!.tensor!.scalars
        }
        #expect(try faded(1) == x.scalars)
        #expect(try faded(0) == low.scalars)
        let quarter = try faded(0.25)
        #expect(largestDifference(quarter, zip(low.scalars, x.scalars).map { 0.75 * $0 + 0.25 * $1 }) < 1e-6)
    }

    @Test func resumingMidTransitionIsBitExact() throws {
        let straight = temporaryDirectory("progan-straight"), split = temporaryDirectory("progan-split")
        defer {
            try? FileManager.default.removeItem(atPath: straight)
            try? FileManager.default.removeItem(atPath: split)
        }
        let a = try Self.build(steps: 6, dir: straight)
        _ = try Self.run(a, dir: straight)
        _ = try Self.run(try Self.build(steps: 6, dir: split), dir: split, steps: 4)
        // The checkpoint of step 4 stands in the middle of 8x8's fade-in.
        let saved = Checkpoint.stageState("grow", in: try SafeTensorsArchive(contentsOf: Checkpoint.list(in: split).last!))
        #expect(saved.values["phase"] == "1" && saved.values["alpha"] == "0.25" && saved.values["imagesShown"] == "24")
        let b = try Self.build(steps: 6, dir: split)
        let summary = try Self.run(b, dir: split, resume: true)
        #expect(summary.lastStep == 6)
        for id in ["G", "D"] {
            #expect(a.stage(id).parameters.map(\.1.scalars) == b.stage(id).parameters.map(\.1.scalars), "\(id)")
        }
        let emaA = (a.stage("G") as! ProGANGeneratorStage).core.ema!.average.namedParameters.map(\.1.scalars)
        let emaB = (b.stage("G") as! ProGANGeneratorStage).core.ema!.average.namedParameters.map(\.1.scalars)
        #expect(emaA == emaB)
        #expect(try a.stage("grow").checkpointState().values == b.stage("grow").checkpointState().values)
        let metrics = try String(contentsOfFile: split + "/metrics.jsonl", encoding: .utf8)
        let reference = try String(contentsOfFile: straight + "/metrics.jsonl", encoding: .utf8)
        func losses(_ text: String) -> [String] {
            text.split(separator: "\n").map { line in String(line.split(separator: ",").filter { $0.contains("loss.") }.joined(separator: ",")) }
        }
        #expect(losses(metrics) == losses(reference))
    }

    @Test func aChangedScheduleRefusesTheCheckpoint() throws {
        let dir = temporaryDirectory("progan-changed")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try Self.run(try Self.build(steps: 4, dir: dir), dir: dir)
        let changed = Self.stages().replacingOccurrences(of: #""transitionKimg": 0.032"#, with: #""transitionKimg": 0.064"#)
        let refusal = #expect(throws: PipelineErrors.self) { _ = try Self.run(try Self.build(changed, steps: 6, dir: dir), dir: dir, resume: true) }
        // Refused for the schedule, not for any other problem.
        #expect(refusal?.errors.map(\.message) == ["stage 'grow': after 24 images the checkpoint was in phase 1 at alpha 0.25, but this schedule gives phase 1 at alpha 0.125; was the schedule changed?"])
        #expect(refusal?.errors.map(\.file) == [dir + "/checkpoints/step-00000004.safetensors"])
    }
}

/// The ProGAN pipelines (validated with every pipeline file) train across their first resolution change on the fixtures.
@Suite struct ProGANPipelineFileTests {
    static let files = ["progan-fashion", "progan-rgb64"]

    /// Phases of 16 images at batch 8: steps 1-2 at 4x4, steps 3-4 fade 8x8 in.
    @Test(arguments: files)
    func runsAcrossAResolutionChangeOnFixtures(_ name: String) throws {
        let (dir, summary) = try PipelineFileTests.runOnFixtures(name, steps: 4, overrides: [
            "grow.batch=8", "grow.batchByResolution={}", "grow.stabilizeFraction=null", "grow.transitionFraction=null",
            "grow.stabilizeKimg=0.016", "grow.transitionKimg=0.016", "grid.every=2",
        ])
        #expect(summary.finalScalars["grow.alpha"] == 0.5)
        let target = name == "progan-fashion" ? 32 : 64
        let grids = try FileManager.default.contentsOfDirectory(atPath: dir + "/samples").sorted()
        #expect(grids == ["step-00000002-resolution4-alpha1.000.png", "step-00000004-resolution8-alpha0.500.png"])
        #expect(try pngHeader(dir + "/samples/" + grids[1])[1] == target + 4)
        let (_, g) = try TrainedRun(dir).generator(nil, registry: .standard)
        #expect(try g.samples(count: 3, seed: 1).shape == [3, name == "progan-fashion" ? 1 : 3, 8, 8])
    }
}

/// `schedule.progressive` with phases as fractions of the run (of its steps, or of its time limit).
@Suite struct ProGANFractionScheduleTests {
    /// ProGANStageTests' 4 -> 16 pipeline with its phases as fractions.
    static func stages(_ phases: String = #""stabilizeFraction": 0.2, "transitionFraction": 0.2"#) -> String {
        ProGANStageTests.stages().replacingOccurrences(of: #""stabilizeKimg": 0.016, "transitionKimg": 0.032"#, with: phases)
    }

    @Test func phasesAreFractionsOfTheStepsAndReachTheTarget() throws {
        let dir = temporaryDirectory("progan-fraction")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try ProGANStageTests.build(Self.stages(), steps: 10, dir: dir)
        let grow = p.stage("grow") as! ProgressiveScheduleStage
        typealias P = ProgressiveScheduleStage.Position
        #expect(grow.position(progress: 0) == P(resolution: 4, alpha: 1, phase: 0))
        #expect(grow.position(progress: 0.3) == P(resolution: 8, alpha: 0.5, phase: 1))
        #expect(grow.position(progress: 0.6) == P(resolution: 16, alpha: 0, phase: 3))
        #expect(grow.position(progress: 0.8) == P(resolution: 16, alpha: 1, phase: 4))
        // Step s sees progress (s - 1) / 10: 4x4 for steps 1-2, 8x8 fades in over 3-4, ...
        var seen: [(Int, Float)] = []
        for step in 1...10 {
            var out: [String: PortValue] = [:]
            for _ in 0..<2 { out = try grow.run(["resolution", "alpha"], step: step, progress: Double(step - 1) / 10, stageID: "grow") }
            seen.append((out["resolution"]!.number.map(Int.init)!, Float(out["alpha"]!.number!)))
        }
        #expect(seen.map(\.0) == [4, 4, 8, 8, 8, 8, 16, 16, 16, 16])
        #expect(seen.map(\.1) == [1, 1, 0, 0.5, 1, 1, 0, 0.5, 1, 1])
        // Images shown count each step's batch (8 at every resolution here).
        #expect(try grow.checkpointState().values["imagesShown"] == "72")

        let run = try ProGANStageTests.build(Self.stages(), steps: 10, dir: dir)
        let summary = try ProGANStageTests.run(run, dir: dir)
        #expect(summary.finalScalars["grow.alpha"] == 1)
        let g = run.stage("G") as! ProGANGeneratorStage
        #expect(g.current.resolution == 16 && g.current.alpha == 1)
    }

    @Test func aTimeLimitedRunReachesTheTargetLongBeforeItsSteps() throws {
        let dir = temporaryDirectory("progan-fraction-time")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 16x16 is faded in at 0.2 of the 5 s (1 s): long before the 100,000 steps. The last step
        // takes the position where the step before it ended, so this fails only if one step ran
        // from before 1 s to past 5 s. (With 0.4 of 2 s, one step of 0.8 s under CI's load
        // stopped the run at 8x8.)
        let phases = #""stabilizeFraction": 0.05, "transitionFraction": 0.05"#
        let p = try ProGANStageTests.build(Self.stages(phases), steps: 100_000, dir: dir)
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        options.timeLimit = try TimeLimit(parsing: "5s")
        let summary = try Runner(pipeline: p, options: options).run()
        #expect(summary.timeLimitReached && !summary.interrupted && summary.lastStep < 100_000)
        let g = p.stage("G") as! ProGANGeneratorStage
        #expect(g.current.resolution == 16 && g.current.alpha == 1,
                "stopped at \(g.current.resolution)x\(g.current.resolution), alpha \(g.current.alpha), after \(summary.lastStep) steps in \(summary.seconds) s")
        #expect(Checkpoint.list(in: dir).last == dir + "/checkpoints/step-\(String(format: "%08d", summary.lastStep)).safetensors")
        // Resumed without the limit, the schedule continues where the checkpoint stood.
        let resumed = try ProGANStageTests.build(Self.stages(phases), steps: summary.lastStep + 2, dir: dir)
        let more = try ProGANStageTests.run(resumed, dir: dir, resume: true)
        #expect(more.lastStep == summary.lastStep + 2 && !more.timeLimitReached)
        #expect((resumed.stage("G") as! ProGANGeneratorStage).current.resolution == 16)
    }

    @Test func validationNamesTheKey() {
        #expect(ProGANStageTests.problems(Self.stages(#""stabilizeFraction": 0.3, "transitionFraction": 0.3"#)) == [
            "$.stages.grow.stabilizeFraction: 2 x (stabilizeFraction 0.3 + transitionFraction 0.3) = 1.2 of the run passes before 16 is faded in; at most 1, so that the run reaches it",
        ])
        #expect(ProGANStageTests.problems(Self.stages(#""stabilizeFraction": 0.2"#)) == [
            "$.stages.grow.transitionFraction: missing: with stabilizeFraction given, give transitionFraction too (0 for none)",
        ])
        #expect(ProGANStageTests.problems(Self.stages(#""stabilizeFraction": 0.2, "transitionFraction": 0.2, "transitionKimg": 6"#)) == [
            "$.stages.grow.transitionKimg: give the phases in images (stabilizeKimg, transitionKimg) or in fractions of the run (stabilizeFraction, transitionFraction), not both",
        ])
        #expect(ProGANStageTests.problems(Self.stages(#""stabilizeFraction": 0, "transitionFraction": 0"#)) == [
            "$.stages.grow.stabilizeFraction: stabilizeFraction and transitionFraction are both 0: the schedule would never leave 4",
        ])
        #expect(ProGANStageTests.problems(Self.stages(#""stabilizeFraction": 1.5, "transitionFraction": 0"#)).count == 1)
    }
}
