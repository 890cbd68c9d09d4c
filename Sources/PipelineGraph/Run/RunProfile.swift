import Foundation
import TensorRuntime

/// A profiled run (`ganflow run --profile`): the profiler and its trace on for the whole run,
/// then a table of time per stage and per op, and the timeline as a Chrome trace.
public enum RunProfile {
    /// Turns the profiler on with a fresh table and trace of at most `traceLimit` events.
    public static func start(traceLimit: Int = 1_000_000) {
        Profiler.reset()
        Profiler.isEnabled = true
        Profiler.startTrace(limit: traceLimit)
    }

    /// What `finish` wrote and found.
    public struct Result: Sendable {
        /// The tables, as printed.
        public var text: String
        public var tracePath: String
        public var tablePath: String
        public var events: Int
        public var dropped: Int
    }

    /// Turns the profiler off and writes `profile.txt` (the tables) and `trace.json` into the run
    /// directory. Times in the tables are per step, over the steps this process ran.
    public static func finish(runDirectory: String, pipelineName: String) throws -> Result {
        let log = Profiler.finishTrace()
        Profiler.isEnabled = false
        let entries = Profiler.entries
        let steps = entries.first { $0.category == .runner && $0.name == "step" }
        let count = max(steps?.calls ?? 0, 1)
        var text = "profile of \(pipelineName): \(steps?.calls ?? 0) steps, "
            + "\(fixed((steps?.totalMilliseconds ?? 0) / Double(count))) ms per step with the profiler on; times per step\n\n"
        text += Profiler.report(.stage, heading: "stage", steps: count, stepNanos: steps?.totalNanos ?? 0) + "\n\n"
        text += Profiler.report(steps: count) + "\n"
        for e in entries where e.category == .runner && e.name != "step" {
            text += "\n\(e.name): \(e.calls) in the run, \(fixed(e.totalMilliseconds / Double(e.calls))) ms each"
        }
        if log.dropped > 0 {
            text += "\ntrace: the first \(log.events.count) events kept, \(log.dropped) later ones dropped"
        }
        let dir = runDirectory as NSString
        let tracePath = dir.appendingPathComponent("trace.json")
        let tablePath = dir.appendingPathComponent("profile.txt")
        try AtomicFile.write(Array(Profiler.chromeTrace(log, processName: "ganflow \(pipelineName)",
                                                                          laneOrder: ["runner"] + StageLane.allCases.map(\.rawValue)).utf8), to: tracePath)
        try AtomicFile.write(Array((text + "\n").utf8), to: tablePath)
        return Result(text: text, tracePath: tracePath, tablePath: tablePath, events: log.events.count, dropped: log.dropped)
    }

    private static func fixed(_ x: Double) -> String { String(format: "%.2f", x) }
}

extension Profiler.Category {
    /// A stage's evaluation or commit.
    public static let stage = Profiler.Category("stage")
    /// The runner's own work: a step, a checkpoint.
    public static let runner = Profiler.Category("runner")
}
