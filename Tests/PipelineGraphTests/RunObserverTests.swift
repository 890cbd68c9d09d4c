import Foundation
import GANFlowTestSupport
import Synchronization
import Testing
@testable import PipelineGraph
import TensorRuntime

/// Records what a run tells its observers.
final class RecordingObserver: RunObserver {
    let logged = Locked<[(step: Int, scalars: [String: Double])]>([])
    let finished = Atomic<Int>(0)

    func runDidLog(step: Int, seconds: Double, scalars: [(String, Double)]) throws {
        logged.withLock { $0.append((step, Dictionary(uniqueKeysWithValues: scalars))) }
    }

    func runDidFinish() throws { finished.add(1, ordering: .relaxed) }
}

@Suite struct RunObserverTests {
    @Test func observersHearEveryLoggedStepAsMetricsJSONLGetsIt() throws {
        let doc = try PipelineDocument.parse(SchedulerTests.diamond, file: "diamond.json")
        let p = try PipelineBuilder(registry: toyRegistry).build(doc, outputDirectory: NSTemporaryDirectory())
        let dir = TestDirectories.make("observer")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let observer = RecordingObserver()
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        options.observers = [observer]
        let summary = try ProfilerLock.exclusive { try Runner(pipeline: p, options: options).run() }
        let logged = observer.logged.withLock { $0 }
        #expect(logged.map(\.step) == Array(1...6))
        #expect(observer.finished.load(ordering: .relaxed) == 1)
        // The same values as metrics.jsonl, line by line.
        let lines = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        for (line, record) in zip(lines, logged) {
            let json = try JSONParser.parse(String(line)).value
            #expect(record.scalars.keys.sorted() == (json.objectEntries ?? []).map(\.0).filter { $0 != "step" && $0 != "time" }.sorted())
            for (k, v) in record.scalars {
                guard case .number(let logged)? = json[k] else { Issue.record("\(k) missing"); continue }
                #expect(Float(logged) == Float(v))
            }
        }
        #expect(logged.last?.scalars["AB.loss"] == summary.finalScalars["AB.loss"])
    }
}
