import Foundation
import GANFlowTestSupport
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

@Suite struct AdaptiveAugmentStageTests {
    static func stages(_ ada: String = "", adaptive: Bool = true) -> String {
        """
        "data": { "type": "dataset.idx", "images": "Fixtures/idx/t10k-256-images-idx3-ubyte.gz", "batch": 8, "size": 16 },
        "aug":  { "type": "augment.diff", "inputs": { "real": "data.images" }, "adaptive": \(adaptive), "probability": 0.2 },
        "D":    { "type": "discriminator.dcgan", "input": "aug.real", "width": 4 },
        "ada":  { "type": "augment.ada", "logits": "D.logits", "augment": "aug", "interval": 2, "speed": 160 \(ada) }
        """
    }

    func feed(_ ada: AdaptiveAugmentStage, sign: Float, times: Int) throws {
        for _ in 0..<times {
            _ = try ada.run(["update", "p", "signal"], inputs: ["logits": .tensor(Tensor(repeating: sign, shape: [8, 1]))], stageID: "ada")
            try ada.commit()
        }
    }

    @Test func movesPTowardsTheTargetEveryInterval() throws {
        let p = try buildPipeline(Self.stages(), consume: "ada.p")
        let ada = p.stage("ada") as! AdaptiveAugmentStage, aug = p.stage("aug") as! DiffAugmentStage
        // r_t = 1 > 0.6: after each interval of 2 evaluations (16 images), p rises by 16 / 160.
        try feed(ada, sign: 3, times: 1)
        #expect(aug.probability == 0.2, "no adjustment inside an interval")
        try feed(ada, sign: 3, times: 1)
        #expect(abs(aug.probability - 0.3) < 1e-12)
        let out = try ada.run(["p", "signal"], inputs: ["logits": .tensor(Tensor(repeating: -1, shape: [8, 1]))], stageID: "ada")
        #expect(abs(out["p"]!.number! - 0.3) < 1e-6 && out["signal"]!.number! == -1)
        try ada.commit()
        try feed(ada, sign: -1, times: 5)
        #expect(abs(aug.probability - 0.0) < 1e-12, "three falls of 0.1 from 0.3, then held at 0")
        try feed(ada, sign: 1, times: 200)
        #expect(aug.probability == 1, "held at 1")
    }

    /// Two ranks (threads) with half a batch each take the whole batch's r_t: rank 0's D says
    /// "real" to all 8 of its images, rank 1's to 5 of 8, so r_t = (8 + 2) / 16 = 0.625 > 0.6 and
    /// p rises by 32 / 160 on both, where rank 0 alone would rise by 16 / 160 and rank 1 alone fall.
    @Test func ranksTakeTheWholeBatchsSignal() throws {
        let group = ThreadedCommunicatorGroup(size: 2)
        let pipelines = try (0..<2).map { _ in try buildPipeline(Self.stages(), consume: "ada.p") }
        let signs: [[Float]] = [Array(repeating: 1, count: 8), Array(repeating: 1, count: 5) + Array(repeating: -1, count: 3)]
        let signals = Locked<[[Double]]>([[], []])
        let failures = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { rank in
            do {
                let ada = pipelines[rank].stage("ada") as! AdaptiveAugmentStage
                for index in 0..<2 {
                    let out = try ada.run(["update", "p", "signal"], index: index,
                                          inputs: ["logits": .tensor(try Tensor(shape: [8, 1], scalars: signs[rank]))],
                                          step: index + 1, stageID: "ada", communicator: group.ranks[rank])
                    signals.withLock { $0[rank].append(out["signal"]!.number!) }
                    try ada.commit()
                }
            } catch {
                failures.withLock { $0.append("rank \(rank): \(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        #expect(signals.withLock { $0 } == [[0.625, 0.625], [0.625, 0.625]])
        for p in pipelines {
            #expect(abs((p.stage("aug") as! DiffAugmentStage).probability - 0.4) < 1e-12)
        }
    }

    @Test func checkpointsTheProbabilityAndTheAccumulators() throws {
        let a = try buildPipeline(Self.stages(), consume: "ada.p")
        let adaA = a.stage("ada") as! AdaptiveAugmentStage
        try feed(adaA, sign: 1, times: 3)
        let augState = try a.stage("aug").checkpointState(), adaState = try adaA.checkpointState()
        #expect(abs(Double(augState.values["p"]!)! - 0.3) < 1e-12)
        #expect(adaState.values == ["signSum": "8.0", "images": "8", "evaluations": "3"])
        let b = try buildPipeline(Self.stages(), consume: "ada.p")
        try b.stage("aug").restore(augState)
        try b.stage("ada").restore(adaState)
        try feed(adaA, sign: 1, times: 1)
        try feed(b.stage("ada") as! AdaptiveAugmentStage, sign: 1, times: 1)
        #expect((a.stage("aug") as! DiffAugmentStage).probability == (b.stage("aug") as! DiffAugmentStage).probability)
        #expect(abs((b.stage("aug") as! DiffAugmentStage).probability - 0.4) < 1e-12)
    }

    @Test func needsAnAdaptiveAugmentStage() {
        #expect(buildProblems(Self.stages(adaptive: false), consume: "ada.p")
                == [#"$.stages.ada.augment: stage 'aug' is not adaptive; set "adaptive": true on it"#])
        #expect(buildProblems(Self.stages().replacingOccurrences(of: #""augment": "aug""#, with: #""augment": "D""#), consume: "ada.p")
                == ["$.stages.ada.augment: stage 'D' is not an augment.diff stage"])
    }

    @Test func runsInTheDiscriminatorPhaseAndLogsP() throws {
        let dir = temporaryDirectory("ada")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = """
        { "name": "ada", "seed": 2, "steps": 4,
          "stages": {
            "data": { "type": "dataset.images", "path": "Fixtures/fashion-mnist", "size": 16, "batch": 8 },
            "z":    { "type": "noise.normal", "dim": 8, "batch": 8 },
            "G":    { "type": "generator.dcgan", "input": "z.samples", "resolution": 16, "width": 4 },
            "aug":  { "type": "augment.diff", "inputs": { "real": "data.images", "fake": "G.images" }, "adaptive": true, "probability": 0.5 },
            "D":    { "type": "discriminator.dcgan", "inputs": { "real": "aug.real", "fake": "aug.fake" }, "width": 4 },
            "loss": { "type": "loss.nonsaturating", "real": "D.real", "fake": "D.fake" },
            "optD": { "type": "optimizer.adam", "minimize": "loss.discriminator", "parameters": "D" },
            "optG": { "type": "optimizer.adam", "minimize": "loss.generator", "parameters": "G" },
            "ada":  { "type": "augment.ada", "logits": "D.real", "augment": "aug", "interval": 1, "speed": 80 }
          },
          "schedule": [ { "run": ["optD", "ada"] }, { "run": "optG" } ] }
        """
        let doc = try PipelineDocument.parse(text, file: repositoryRoot + "/ada.json")
        let p = try PipelineBuilder(registry: .standard).build(doc, outputDirectory: dir)
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        _ = try Runner(pipeline: p, options: options).run()
        let lines = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 4)
        #expect(lines.allSatisfy { $0.contains("\"ada.p\"") && $0.contains("\"aug.p\"") && $0.contains("\"ada.signal\"") })
        // Every D step moves p by 8 / 80 one way or the other.
        let probability = (p.stage("aug") as! DiffAugmentStage).probability
        let steps = (probability - 0.5) / 0.1
        #expect(abs(steps - steps.rounded()) < 1e-9 && abs(steps) <= 4)
    }
}
