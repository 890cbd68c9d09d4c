import Foundation
import GANFlowTestSupport
import Testing
@testable import PipelineGraph
import TensorRuntime

@Suite struct CheckpointTests {
    func build(_ text: String = SchedulerTests.diamond, file: String = "diamond.json") throws -> Pipeline {
        let doc = try PipelineDocument.parse(text, file: file)
        return try PipelineBuilder(registry: toyRegistry).build(doc, outputDirectory: NSTemporaryDirectory())
    }

    func tempDir() -> String {
        TestDirectories.make("ckpt")
    }

    func run(_ p: Pipeline, dir: String, steps: Int? = nil, resume: Bool = false) throws -> RunSummary {
        var o = Runner.Options(runDirectory: dir)
        o.quiet = true
        o.resume = resume
        o.stepsOverride = steps
        return try ProfilerLock.exclusive { try Runner(pipeline: p, options: o).run() }
    }

    func weights(_ p: Pipeline) -> [Float] {
        p.nodes["A"]!.stage.parameters[0].1.scalars + p.nodes["B"]!.stage.parameters[0].1.scalars
    }

    @Test func resumeIsBitIdenticalToAnUninterruptedRun() throws {
        let straight = try build()
        let d1 = tempDir(), d2 = tempDir()
        defer { try? FileManager.default.removeItem(atPath: d1); try? FileManager.default.removeItem(atPath: d2) }
        _ = try run(straight, dir: d1, steps: 9)

        let first = try build()
        _ = try run(first, dir: d2, steps: 4)
        let second = try build()  // a fresh process would start from fresh stages
        let summary = try run(second, dir: d2, steps: 9, resume: true)
        #expect(summary.lastStep == 9)
        #expect(weights(second) == weights(straight))
        #expect(weights(second) != weights(first), "the resumed run must have trained further")

        // metrics.jsonl has each step once, in order, after the resume.
        let lines = try String(contentsOfFile: d2 + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 9)
        #expect(lines.first?.hasPrefix("{\"step\":1,") == true)
        #expect(lines.last?.hasPrefix("{\"step\":9,") == true)
    }

    @Test func keepsOnlyTheLastCheckpoints() throws {
        let text = SchedulerTests.diamond.replacingOccurrences(of: "\"steps\": 6,", with: "\"steps\": 6, \"checkpoint\": {\"every\": 1, \"keep\": 2},")
        let p = try build(text)
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try run(p, dir: dir)
        #expect(Checkpoint.list(in: dir).map { ($0 as NSString).lastPathComponent } ==
                ["step-00000005.safetensors", "step-00000006.safetensors"])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir + "/checkpoints").filter { !$0.hasSuffix(".safetensors") }
        #expect(leftovers.isEmpty, "no temporary files are left behind")
    }

    @Test func refusesACheckpointOfAnotherPipeline() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try run(try build(), dir: dir, steps: 2)
        let other = try build(SchedulerTests.diamond.replacingOccurrences(of: "\"diamond\"", with: "\"other\""))
        let path = Checkpoint.list(in: dir).last!
        #expect {
            _ = try Checkpoint.load(other, from: path)
        } throws: { e in
            (e as? PipelineErrors)?.description == "\(path): checkpoint of pipeline 'diamond', not 'other'"
        }
    }

    /// A pipeline of the same name whose stages hold other tensors (a changed size, an added
    /// model) must not load the checkpoint, even in part.
    @Test func refusesACheckpointOfTheSameNameWithOtherTensors() throws {
        let dir = tempDir()
        _ = try run(try build(), dir: dir, steps: 2)
        let path = Checkpoint.list(in: dir).last!
        let resized = try build(SchedulerTests.diamond.replacingOccurrences(of: "\"size\": 8", with: "\"size\": 6"))
        let before = weights(resized)
        #expect {
            _ = try Checkpoint.load(resized, from: path)
        } throws: { e in
            (e as? PipelineErrors)?.description == "\(path): the checkpoint's tensors do not match this pipeline's stages"
        }
        #expect(weights(resized) == before, "nothing was loaded")
        let added = try build(SchedulerTests.diamond.replacingOccurrences(
            of: #""AB":"#, with: #""C": { "type": "test.scale", "input": "x.value" }, "AB":"#))
        #expect {
            _ = try Checkpoint.load(added, from: path)
        } throws: { e in
            (e as? PipelineErrors)?.description == "\(path): the checkpoint's tensors do not match this pipeline's stages; it has no tensor 'C/weight'"
        }
        // The run refuses to resume rather than start over.
        #expect(throws: PipelineErrors.self) { _ = try run(resized, dir: dir, steps: 4, resume: true) }
        #expect(Checkpoint.list(in: dir) == [path])
    }

    @Test func resumeSkipsACorruptNewestCheckpointAndSaysSo() throws {
        let text = SchedulerTests.diamond.replacingOccurrences(of: "\"steps\": 6,", with: "\"steps\": 6, \"checkpoint\": {\"every\": 2, \"keep\": 3},")
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try run(try build(text), dir: dir, steps: 4)
        let newest = Checkpoint.list(in: dir).last!
        #expect(newest.hasSuffix("step-00000004.safetensors"))
        // Truncate the newest checkpoint, as a crash mid-copy would.
        let data = try Data(contentsOf: URL(fileURLWithPath: newest))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: newest))
        let resumed = try build(text)
        var o = Runner.Options(runDirectory: dir)
        o.quiet = true
        o.resume = true
        o.stepsOverride = 4
        let runner = Runner(pipeline: resumed, options: o)
        let summary = try ProfilerLock.exclusive { try runner.run() }
        #expect(summary.lastStep == 4)
        #expect(runner.resumedFrom?.hasSuffix("step-00000002.safetensors") == true)
        #expect(FileManager.default.fileExists(atPath: newest + ".unreadable"), "the corrupt file is set aside")
        #expect(Checkpoint.list(in: dir).last?.hasSuffix("step-00000004.safetensors") == true, "a new good step-4 checkpoint")
    }

    @Test func resumeSkipsABitFlippedNewestCheckpoint() throws {
        let text = SchedulerTests.diamond.replacingOccurrences(of: "\"steps\": 6,", with: "\"steps\": 6, \"checkpoint\": {\"every\": 2, \"keep\": 3},")
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try run(try build(text), dir: dir, steps: 4)
        let newest = Checkpoint.list(in: dir).last!
        // One bit of the last weight: the layout stays valid, only the data checksum can tell.
        var data = try Data(contentsOf: URL(fileURLWithPath: newest))
        data[data.count - 2] ^= 0x10
        try data.write(to: URL(fileURLWithPath: newest))
        #expect {
            _ = try SafeTensorsArchive(contentsOf: newest)
        } throws: { e in
            "\(e)".hasPrefix("\(newest): the tensor data does not match its checksum (")
        }
        var o = Runner.Options(runDirectory: dir)
        o.quiet = true
        o.resume = true
        o.stepsOverride = 6
        let runner = Runner(pipeline: try build(text), options: o)
        #expect(try ProfilerLock.exclusive { try runner.run() }.lastStep == 6)
        #expect(runner.resumedFrom?.hasSuffix("step-00000002.safetensors") == true)
        #expect(FileManager.default.fileExists(atPath: newest + ".unreadable"))
    }

    @Test func resumeWithOnlyUnreadableCheckpointsFailsInsteadOfStartingOver() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try run(try build(), dir: dir, steps: 2)
        let only = Checkpoint.list(in: dir).last!
        try Data("not a checkpoint".utf8).write(to: URL(fileURLWithPath: only))
        #expect {
            _ = try run(try build(), dir: dir, steps: 4, resume: true)
        } throws: { e in
            (e as? PipelineErrors)?.description.hasPrefix("\(dir): --resume found no readable checkpoint: \(only): ") == true
        }
    }

    @Test func nonFiniteLossStopsTheRunNamingStageAndStep() throws {
        // A learning rate this large diverges within a few steps.
        let text = SchedulerTests.diamond.replacingOccurrences(of: "\"lr\": 0.05", with: "\"lr\": 1e30")
            .replacingOccurrences(of: "\"steps\": 6,", with: "\"steps\": 6, \"checkpoint\": {\"every\": 1, \"keep\": 2},")
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect {
            _ = try run(try build(text), dir: dir, steps: 50)
        } throws: { e in
            guard let f = e as? NonFiniteValue else { return false }
            // The checkpoint named is the one of the step before, the last with finite values.
            let last = f.step > 1 ? dir + "/checkpoints/" + Checkpoint.fileName(step: f.step - 1) : nil
            let ending = last.map { "the last good checkpoint is \($0)" } ?? "no checkpoint was written before it"
            return f.wire == "AB.loss" && f.lastCheckpoint == last
                && f.description.hasPrefix("step \(f.step): 'AB.loss' is ") && f.description.contains("(stage 'AB'); stopping at the first non-finite value; ")
                && f.description.hasSuffix(ending)
        }
    }
}
