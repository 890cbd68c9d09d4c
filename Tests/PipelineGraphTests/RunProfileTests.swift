import Foundation
import GANFlowTestSupport
import Testing
@testable import PipelineGraph
import TensorRuntime

@Suite struct RunProfileTests {
    @Test func aProfiledRunWritesStageTablesAndAChromeTraceOfItsLanes() throws {
        // The profiler is process-wide and other tests run pipelines meanwhile, so this one's
        // stage ids are its own and the checks count only them.
        var text = SchedulerTests.diamond
        for (from, to) in [("\"optA\"", "\"pOptA\""), ("\"optB\"", "\"pOptB\""), ("\"AB\"", "\"pAB\""),
                           ("\"A\"", "\"pA\""), ("\"B\"", "\"pB\""), ("\"x\"", "\"pX\""), ("\"y\"", "\"pY\""),
                           ("\"log\"", "\"pLog\""), ("\"A.out\"", "\"pA.out\""), ("\"B.out\"", "\"pB.out\""),
                           ("\"x.value\"", "\"pX.value\""), ("\"y.value\"", "\"pY.value\""), ("\"AB.loss\"", "\"pAB.loss\"")] {
            text = text.replacingOccurrences(of: from, with: to)
        }
        let doc = try PipelineDocument.parse(text, file: "diamond.json")
        let pipeline = try PipelineBuilder(registry: toyRegistry).build(doc, outputDirectory: NSTemporaryDirectory())
        let dir = TestDirectories.make("profile")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        let result = try ProfilerLock.exclusive {
            RunProfile.start()
            _ = try Runner(pipeline: pipeline, options: options).run()
            return try RunProfile.finish(runDirectory: dir, pipelineName: "diamond")
        }
        #expect(result.text.hasPrefix("profile of diamond: "))
        for stage in ["pA (test.scale)", "pB (test.scale)", "pAB (test.distance)", "pOptA commit", "pOptB commit"] {
            #expect(result.text.contains(stage), "the stage table names \(stage)")
        }
        #expect(try String(contentsOfFile: result.tablePath, encoding: .utf8) == result.text + "\n")

        let trace = try JSONParser.parse(bytes: Array(FileManager.default.contents(atPath: result.tracePath)!)).value
        guard case .array(let events)? = trace["traceEvents"] else { Issue.record("no traceEvents array"); return }
        #expect(events.count > result.events, "the events, after the process and track names")
        var tracks: [Double: String] = [:]
        var stageEvents: [(name: String, tid: Double)] = []
        var steps = 0 // of every run in the process meanwhile
        for e in events {
            guard case .string(let ph)? = e["ph"], case .number(let tid)? = e["tid"], case .string(let name)? = e["name"]
            else { Issue.record("malformed event"); continue }
            if ph == "M", name == "thread_name", case .string(let label)? = e["args"]?["name"] { tracks[tid] = label }
            if ph == "X", case .string(let cat)? = e["cat"] {
                if cat == "stage" { stageEvents.append((name, tid)) }
                if cat == "runner" && name == "step" { steps += 1 }
            }
        }
        #expect(steps >= 6)
        // The diamond's A runs once per evaluation: 6 steps x (1 + 2 repeats), and for the sink
        // at steps 2, 4 and 6.
        #expect(stageEvents.filter { $0.name == "pA (test.scale)" }.count == 21)
        #expect(stageEvents.filter { $0.name == "pOptB commit" }.count == 18)
        // Only this run's stages: other tests' runs meanwhile put their input and output stages
        // on other lanes.
        let own = ["pA ", "pB ", "pAB ", "pOptA ", "pOptB ", "pX ", "pY ", "pLog "]
        let ownEvents = stageEvents.filter { e in own.contains { e.name.hasPrefix($0) } }
        #expect(ownEvents.count >= 39)
        for e in ownEvents {
            #expect(tracks[e.tid]?.hasPrefix("compute lane") == true, "\(e.name) is on \(tracks[e.tid] ?? "no track")")
        }
        #expect(tracks.values.contains { $0.hasPrefix("runner lane") })
    }
}
