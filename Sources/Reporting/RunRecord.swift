import Foundation
import PipelineGraph

/// What a finished run directory holds, read back for reports and comparisons: the resolved
/// pipeline, every logged scalar as a series over steps, the final values, and the sample grids.
public struct RunRecord: Sendable {
    public var name: String
    public var directory: String
    /// `pipeline.json` as written by the run (after `--set`).
    public var pipeline: JSONValue
    /// Each scalar's (step, value) points, in step order.
    public var series: [String: [(step: Int, value: Double)]]
    /// Wall-clock seconds of the run at each logged step (`metrics.jsonl`'s "time", which
    /// continues across a resume).
    public var secondsAtStep: [Int: Double]
    /// `summary.json`'s final values, by name.
    public var final: [String: Double]
    public var seconds: Double?
    public var lastStep: Int?
    /// `samples/step-NNNNNNNN.png` grids (tagged ones too: `step-NNNNNNNN-resolution16-alpha0.250.png`), by step.
    public var grids: [(step: Int, path: String)]

    /// Reads `directory`; `name` labels the run (default: the pipeline's name).
    public init(directory: String, name: String? = nil) throws {
        self.directory = directory
        let fm = FileManager.default
        func read(_ file: String) throws -> String {
            let path = (directory as NSString).appendingPathComponent(file)
            guard let data = fm.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw PipelineErrors([PipelineError("report.run", file: path, "cannot read this file; is \(directory) a run directory?")])
            }
            return text
        }
        func parse(_ text: String, _ file: String) throws -> JSONValue {
            do throws(JSONSyntaxError) {
                return try JSONParser.parse(text).value
            } catch {
                throw PipelineErrors([PipelineError("report.run", file: (directory as NSString).appendingPathComponent(file), "\(error.message)")])
            }
        }
        pipeline = try parse(try read("pipeline.json"), "pipeline.json")
        if case .string(let n)? = pipeline["name"] { self.name = name ?? n } else { self.name = name ?? (directory as NSString).lastPathComponent }
        var series: [String: [(step: Int, value: Double)]] = [:]
        var secondsAtStep: [Int: Double] = [:]
        if let text = try? read("metrics.jsonl") {
            for line in text.split(separator: "\n") {
                guard let entries = try parse(String(line), "metrics.jsonl").objectEntries,
                      case .number(let s)? = entries.first(where: { $0.0 == "step" })?.1 else { continue }
                if case .number(let t)? = entries.first(where: { $0.0 == "time" })?.1 { secondsAtStep[Int(s)] = t }
                for (key, value) in entries where key != "step" && key != "time" {
                    if case .number(let v) = value { series[key, default: []].append((Int(s), v)) }
                }
            }
        }
        self.series = series
        self.secondsAtStep = secondsAtStep
        var final: [String: Double] = [:]
        if let text = try? read("summary.json") {
            let summary = try parse(text, "summary.json")
            for (k, v) in summary["final"]?.objectEntries ?? [] { if case .number(let n) = v { final[k] = n } }
            if case .number(let s)? = summary["seconds"] { seconds = s }
            if case .number(let s)? = summary["lastStep"] { lastStep = Int(s) }
        }
        self.final = final
        let samples = (directory as NSString).appendingPathComponent("samples")
        grids = ((try? fm.contentsOfDirectory(atPath: samples)) ?? []).compactMap { file -> (step: Int, path: String)? in
            // step-NNNNNNNN.png, or with a grid's tags: step-NNNNNNNN-resolution16-alpha0.250.png
            guard file.hasPrefix("step-"), file.hasSuffix(".png") else { return nil }
            let name = file.dropFirst(5).dropLast(4)
            let digits = name.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count == name.count || name.dropFirst(digits.count).first == "-", let step = Int(digits) else { return nil }
            return (step, (samples as NSString).appendingPathComponent(file))
        }.sorted { $0.step < $1.step }
    }

    /// `key`'s points against the run's wall-clock minutes, for comparisons at equal time; points
    /// logged without a time are left out.
    public func againstMinutes(_ key: String) -> [(x: Double, value: Double)] {
        (series[key] ?? []).compactMap { point in secondsAtStep[point.step].map { ($0 / 60, point.value) } }
    }

    /// Series grouped for charts: losses together, each other stage's scalars together.
    public var chartGroups: [(title: String, keys: [String])] {
        var groups: [String: [String]] = [:]
        for key in series.keys.sorted() {
            let stage = String(key.prefix { $0 != "." })
            let group = key.hasPrefix("loss") || key.contains(".discriminator") || key.contains(".generator") ? "losses" : stage
            groups[group, default: []].append(key)
        }
        return groups.keys.sorted { ($0 == "losses" ? "" : $0) < ($1 == "losses" ? "" : $1) }.map { ($0, groups[$0]!) }
    }
}
