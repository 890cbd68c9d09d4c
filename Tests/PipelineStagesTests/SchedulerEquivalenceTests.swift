import Foundation
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

/// "Both schedulers give bit-identical results for a seed" on real pipelines: prefetching loaders,
/// batch norm, oneDNN kernels, augmentation, metrics and a progressive schedule, run a few steps
/// under `--scheduler serial` and `--scheduler dispatch`.
@Suite struct SchedulerEquivalenceTests {
    static let images = fixture("idx/t10k-256-images-idx3-ubyte.gz")
    static let labels = fixture("idx/t10k-256-labels-idx1-ubyte.gz")

    static let cases: [(pipeline: String, steps: Int, overrides: [String])] = [
        // DCGAN-32 with its metrics (classifier features, FID, KID, precision/recall, modes) and
        // D's balance, all due at the last step.
        ("dcgan-fashion.json", 3, ["data.images=\(images)", "test.images=\(images)", "test.labels=\(labels)",
                                   "features.count=32", "G.width=16", "D.width=16", "grid.every=2", "tb.every=2"]),
        // ProGAN across a resolution change: 4x4 for 2 steps, 8x8 faded in over 2, then stable
        // (batch 64 at both, so 0.128 kimg is 2 steps); minibatch stddev, equalized learning rate,
        // WGAN-GP's second-order gradients, optimizer resets on each phase.
        // Its FID at the end measures 8x8 images enlarged to 32x32.
        ("progan-fashion.json", 5, ["data.images=\(images)", "test.images=\(images)", "test.labels=\(labels)", "features.count=32",
                                    "grow.stabilizeFraction=null", "grow.transitionFraction=null",
                                    "grow.stabilizeKimg=0.128", "grow.transitionKimg=0.128",
                                    "grid.every=2", "G.fmapMax=32", "D.fmapMax=32"]),
        // MSG-GAN: image pyramids on both sides, the pyramid sink and consistency metric.
        ("msggan-fashion.json", 2, ["data.images=\(images)", "test.images=\(images)", "test.labels=\(labels)", "features.count=32",
                                    "G.fmapMax=32", "D.fmapMax=32"]),
    ]

    /// Runs `file` under `scheduler`; returns its last checkpoint and metrics.jsonl without the
    /// wall-clock times.
    static func run(_ file: String, steps: Int, overrides: [String], scheduler: SchedulerKind) throws -> (checkpoint: Data, metrics: [String]) {
        let dir = temporaryDirectory("scheduler-\(scheduler.rawValue)")
        let doc = try PipelineDocument.load(file: repositoryRoot + "/pipelines/" + file, overrides: overrides, lengthGiven: true)
        let pipeline = try PipelineBuilder(registry: .standard).build(doc, outputDirectory: dir)
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        options.stepsOverride = steps
        options.scheduler = scheduler
        let summary = try Runner(pipeline: pipeline, options: options).run()
        let checkpoint = try Data(contentsOf: URL(fileURLWithPath: try #require(summary.checkpoint)))
        let metrics = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
            String($0.replacing(/"time":[0-9.e+-]+,/, with: ""))
        }
        return (checkpoint, metrics)
    }

    @Test(arguments: cases.map(\.pipeline))
    func serialAndDispatchGiveBitIdenticalCheckpointsAndMetrics(_ file: String) throws {
        let c = Self.cases.first { $0.pipeline == file }!
        let started = Date()
        defer { print("SchedulerEquivalenceTests: \(file), \(c.steps) steps under each scheduler: \(String(format: "%.1f", Date().timeIntervalSince(started))) s") }
        let serial = try Self.run(file, steps: c.steps, overrides: c.overrides, scheduler: .serial)
        let dispatch = try Self.run(file, steps: c.steps, overrides: c.overrides, scheduler: .dispatch)
        #expect(serial.metrics.count == c.steps)
        #expect(serial.metrics == dispatch.metrics)
        #expect(serial.checkpoint == dispatch.checkpoint, "\(file): the checkpoints of step \(c.steps) differ")
    }
}
