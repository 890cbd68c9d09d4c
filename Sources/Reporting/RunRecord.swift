import Foundation
import PipelineGraph

/// What a finished run directory holds, read back for reports and comparisons: the resolved
/// pipeline, every logged scalar as a series over steps, the final values, and the grids of every
/// image sink.
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
    /// Every folder of the run directory that holds `step-NNNNNNNN.png` files (tagged ones too:
    /// `step-NNNNNNNN-resolution16-alpha0.250.png`), with its files by step: sink.grid's
    /// `samples`, sink.classgrid's `classgrid`, any sink's own `folder`. `samples` comes first,
    /// the others by name.
    public var gridFolders: [(folder: String, grids: [(step: Int, path: String)])]
    /// The first folder's grids (`samples` where there is one), by step.
    public var grids: [(step: Int, path: String)] { gridFolders.first?.grids ?? [] }

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
        gridFolders = ((try? fm.contentsOfDirectory(atPath: directory)) ?? [])
            .sorted { ($0 == "samples" ? "" : $0) < ($1 == "samples" ? "" : $1) }
            .compactMap { folder in
                let grids = Self.stepImages(in: (directory as NSString).appendingPathComponent(folder))
                return grids.isEmpty ? nil : (folder, grids)
            }
    }

    /// The `step-NNNNNNNN.png` files of `folder` (or with a grid's tags:
    /// `step-NNNNNNNN-resolution16-alpha0.250.png`), by step; none when it is not a folder.
    static func stepImages(in folder: String) -> [(step: Int, path: String)] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).compactMap { file -> (step: Int, path: String)? in
            guard file.hasPrefix("step-"), file.hasSuffix(".png") else { return nil }
            let name = file.dropFirst(5).dropLast(4)
            let digits = name.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count == name.count || name.dropFirst(digits.count).first == "-", let step = Int(digits) else { return nil }
            return (step, (folder as NSString).appendingPathComponent(file))
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
