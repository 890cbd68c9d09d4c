import Foundation
import PipelineGraph
import PipelineStages
import Testing
import TensorRuntime

@Suite struct ExportTests {
    static func stages(seed: Int = 1) -> String {
        """
        "z": { "type": "noise.normal", "batch": 4, "dim": 16 },
        "data": { "type": "test.images", "batch": 4, "size": 16 },
        "G": { "type": "generator.dcgan", "input": "z.samples", "resolution": 16, "width": 8, "ema": 0.8 },
        "D": { "type": "discriminator.dcgan", "inputs": { "real": "data.images", "fake": "G.images" }, "width": 8, "norm": "spectral" },
        "loss": { "type": "loss.hinge", "real": "D.real", "fake": "D.fake" },
        "optD": { "type": "optimizer.adam", "minimize": "loss.discriminator", "parameters": "D" },
        "optG": { "type": "optimizer.adam", "minimize": "loss.generator", "parameters": "G" }
        """
    }

    func train(_ p: Pipeline, steps: Int, in dir: String) throws {
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        options.stepsOverride = steps
        _ = try Runner(pipeline: p, options: options).run()
    }

    func everything(_ d: SafeTensorsArchive) throws -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: try d.names.map { ($0, try d.tensor($0).scalars) })
    }

    @Test func stateDictsRoundTripThroughAFile() throws {
        let dir = temporaryDirectory("export")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let trained = try pipeline(stages: Self.stages(), steps: 3)
        try train(trained, steps: 3, in: dir)
        for id in ["G", "D"] {
            let source = stage(trained, id, as: (any ModelStage).self)
            let file = (dir as NSString).appendingPathComponent("\(id).safetensors")
            try source.stateDict(ema: false).write(to: file)
            let reread = try SafeTensorsArchive(contentsOf: file)
            // Another seed: every value differs until loaded.
            let fresh = try pipeline(stages: Self.stages(), seed: 2)
            let target = stage(fresh, id, as: (any ModelStage).self)
            #expect(try everything(target.stateDict(ema: false)) != everything(source.stateDict(ema: false)))
            try target.loadStateDict(reread)
            #expect(try everything(target.stateDict(ema: false)) == everything(source.stateDict(ema: false)))
        }
        // Counters are int64 scalars, as PyTorch writes num_batches_tracked: G ran in 2 training evaluations a step.
        let g = try stage(trained, "G", as: DCGANGeneratorStage.self).stateDict(ema: false)
        #expect(g.entry("1.num_batches_tracked")?.dtype == .i64 && g.entry("1.num_batches_tracked")?.shape == [])
        #expect(try g.integers("1.num_batches_tracked") == [6])
        // Loading weights restarts the moving average from them.
        let fresh = try pipeline(stages: Self.stages(), seed: 2)
        let target = stage(fresh, "G", as: DCGANGeneratorStage.self)
        try target.loadStateDict(g)
        #expect(try everything(target.stateDict(ema: true)) == everything(g))
    }

    @Test func checkpointsExportWithoutBuildingThePipeline() throws {
        let dir = temporaryDirectory("export-ckpt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try pipeline(stages: Self.stages(), steps: 2)
        try train(p, steps: 2, in: dir)
        let run = try TrainedRun(dir)
        #expect(run.step == 2)
        let g = stage(p, "G", as: DCGANGeneratorStage.self)
        #expect(try everything(run.stateDict(stage: "G", ema: false, registry: ganTestRegistry)) == everything(g.stateDict(ema: false)))
        #expect(try everything(run.stateDict(stage: "G", ema: true, registry: ganTestRegistry)) == everything(g.stateDict(ema: true)))
        #expect(try everything(run.stateDict(stage: "G", ema: true, registry: ganTestRegistry)) != everything(g.stateDict(ema: false)))
        #expect(try TrainedRun(run.checkpointPath).stateDict(stage: "D", ema: false, registry: ganTestRegistry).names.contains("0.weight_u"))
        func message(_ f: () throws -> SafeTensorsArchive) -> String {
            do { _ = try f(); return "" } catch { return (error as? PipelineErrors)?.errors.map(\.message).joined() ?? "\(error)" }
        }
        #expect(message { try run.stateDict(stage: "D", ema: true, registry: ganTestRegistry) }
                == "stage 'D': this stage keeps no moving average (set 'ema' on it)")
        #expect(message { try run.stateDict(stage: "optD", ema: false, registry: ganTestRegistry) }
                == "stage 'optD' is not a model (generator or discriminator)")
        #expect(message { try run.stateDict(stage: "H", ema: false, registry: ganTestRegistry) } == "no stage 'H'")
    }

    @Test func samplesComeFromTheCheckpointedMovingAverage() throws {
        let dir = temporaryDirectory("sample")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try pipeline(stages: Self.stages(), steps: 2)
        try train(p, steps: 2, in: dir)
        let (id, loaded) = try TrainedRun(dir).generator(nil, registry: ganTestRegistry)
        #expect(id == "G" && loaded.hasMovingAverage)
        let live = stage(p, "G", as: DCGANGeneratorStage.self)
        let a = try loaded.samples(count: 6, seed: 3), b = try live.samples(count: 6, seed: 3)
        #expect(a.shape == [6, 1, 16, 16])
        #expect(a.scalars == b.scalars)
        #expect(try loaded.samples(count: 6, seed: 4).scalars != a.scalars)
    }

    @Test func discriminatorsComeBackFromTheCheckpointWithTheirImageSize() throws {
        let dir = temporaryDirectory("critic")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try pipeline(stages: Self.stages(), steps: 2)
        try train(p, steps: 2, in: dir)
        let run = try TrainedRun(dir)
        #expect(try run.isCritic("D", registry: ganTestRegistry))
        #expect(try !run.isCritic("G", registry: ganTestRegistry))
        #expect(try !run.isCritic("H", registry: ganTestRegistry))
        let (loaded, shape) = try run.critic("D", registry: ganTestRegistry)
        #expect(shape == [4, 1, 16, 16])
        var rng = PhiloxRandom(seed: 5)
        let images = Tensor(randomUniform: shape, low: -1, high: 1, using: &rng)
        let live = stage(p, "D", as: DCGANDiscriminatorStage.self)
        let a = try withoutGradients { try loaded.critic(images) }, b = try withoutGradients { try live.critic(images) }
        #expect(a.shape == [4, 1] || a.shape == [4])
        #expect(a.scalars == b.scalars)
        func message(_ f: () throws -> Void) -> String {
            do { try f(); return "" } catch { return (error as? PipelineErrors)?.errors.map(\.message).joined() ?? "\(error)" }
        }
        #expect(message { _ = try run.critic("G", registry: ganTestRegistry) } == "stage 'G' is not a discriminator of single images")
        #expect(message { _ = try run.critic("H", registry: ganTestRegistry) } == "no stage 'H'")
        // A checkpoint copied out of its run directory has no pipeline to build the stage from.
        let alone = dir + "/alone.safetensors"
        try FileManager.default.copyItem(atPath: run.checkpointPath, toPath: alone)
        #expect(message { _ = try TrainedRun(alone).critic("D", registry: ganTestRegistry) }
                == "no pipeline.json beside this run (looked for \((dir as NSString).deletingLastPathComponent)/pipeline.json); a checkpoint is read in its run directory, as RUN/checkpoints/step-N.safetensors")
    }

    @Test func mismatchedFilesAreRefused() throws {
        let p = try pipeline(stages: Self.stages())
        let g = stage(p, "G", as: DCGANGeneratorStage.self)
        var missing = try g.stateDict(ema: false)
        missing.remove("3.weight")
        #expect(throws: StageProblem.self) { try g.loadStateDict(missing) }
        var extra = try g.stateDict(ema: false)
        extra.set("99.weight", Tensor(zeros: [1]))
        #expect(throws: StageProblem.self) { try g.loadStateDict(extra) }
        var misshapen = try g.stateDict(ema: false)
        misshapen.set("0.weight", Tensor(zeros: [16, 32, 4, 4]))
        do {
            try g.loadStateDict(misshapen)
            Issue.record("a misshapen tensor was accepted")
        } catch let e as StageProblem {
            #expect(e.message == "tensor '0.weight' has shape [16, 32, 4, 4] in the file, expected [16, 16, 4, 4]")
        }
        do {
            try g.loadStateDict(extra)
        } catch let e as StageProblem {
            #expect(e.message == "unexpected tensors 99.weight")
        }
    }
}
