import Foundation
import PipelineGraph

/// `compare.html`: several runs of variants of a pipeline side by side: every scalar's curves
/// overlaid, the final grids next to each other, a table of final values with the best of each
/// metric marked, and the exact differences between the resolved pipelines.
public enum CompareReport {
    public static func html(_ runs: [RunRecord]) -> String {
        var body = "<h1>Comparison of \(runs.count) runs</h1>"
        body += "<p>" + runs.map { "<b>\(HTML.escape($0.name))</b> (\(HTML.escape($0.directory)))" }.joined(separator: ", ") + "</p>"

        body += "<h2>Final values</h2>" + table(runs)

        body += "<h2>Final samples</h2><div class=\"grids\">"
        for run in runs {
            guard let last = run.grids.last, let uri = HTML.dataURI(png: last.path) else {
                body += "<figure><figcaption>\(HTML.escape(run.name)): no grid</figcaption></figure>"
                continue
            }
            body += "<figure><img class=\"grid\" src=\"\(uri)\"\(HTML.doubledWidth(png: last.path)) alt=\"\(HTML.escape(run.name))\"><figcaption>\(HTML.escape(run.name)), step \(last.step)</figcaption></figure>"
        }
        body += "</div>"

        body += "<h2>Curves</h2><div class=\"charts\">"
        let keys = Set(runs.flatMap { $0.series.keys }).sorted()
        for key in keys {
            body += HTML.lineChart(title: key, series: runs.map { ($0.name, $0.series[key] ?? []) })
        }
        body += "</div>"

        // Architectures differ in the cost of a step, so quality per step is half the story: the
        // metrics again against each run's wall-clock (what `compare --time-limit` equalises).
        let metrics = keys.filter { key in runs.contains { MetricDirection.of(key, in: $0.pipeline) != nil } }
        let timed = metrics.filter { key in runs.contains { !$0.againstMinutes(key).isEmpty } }
        if !timed.isEmpty {
            body += "<h2>Metrics against wall-clock</h2><div class=\"charts\">"
            for key in timed {
                body += HTML.lineChart(title: key, axis: "minutes", series: runs.map { ($0.name, $0.againstMinutes(key)) })
            }
            body += "</div>"
        }

        body += "<h2>Pipeline differences</h2>" + differences(runs)
        return RunReport.page(title: "GANFlow comparison", body: body)
    }

    /// Final values, one column per run and one row per value (a pipeline logs a dozen or more,
    /// which as columns ran off the page); the best value of each metric row is marked.
    static func table(_ runs: [RunRecord]) -> String {
        let keys = Set(runs.flatMap { $0.final.keys }).sorted()
        guard !keys.isEmpty else { return "<p>No final values.</p>" }
        var html = "<table><tr><th>value</th>" + runs.map { "<th>\(HTML.escape($0.name))</th>" }.joined() + "</tr>"
        html += "<tr><td>steps</td>" + runs.map { "<td>\($0.lastStep.map(String.init) ?? "")</td>" }.joined() + "</tr>"
        html += "<tr><td>minutes</td>" + runs.map { "<td>\($0.seconds.map { String(format: "%.1f", $0 / 60) } ?? "")</td>" }.joined() + "</tr>"
        for key in keys {
            var best: Double?
            if let direction = runs.lazy.compactMap({ MetricDirection.of(key, in: $0.pipeline) }).first {
                let values = runs.compactMap { $0.final[key] }.filter(\.isFinite)
                if values.count > 1 { best = direction == .lower ? values.min() : values.max() }
            }
            html += "<tr><td>\(HTML.escape(key))</td>"
            for run in runs {
                guard let v = run.final[key] else { html += "<td></td>"; continue }
                html += "<td\(best == v ? " class=\"best\"" : "")>\(HTML.number(v))</td>"
            }
            html += "</tr>"
        }
        return html + "</table><p>Steps and minutes: how far each run got and its wall-clock. Marked: the best value of each metric (lower FID, KID and KL; higher precision, recall, modes and accuracy). Losses are not ranked.</p>"
    }

    /// Every JSON path whose value differs between the runs' resolved pipelines.
    static func differences(_ runs: [RunRecord]) -> String {
        let flat = runs.map { flatten($0.pipeline) }
        let paths = Set(flat.flatMap(\.keys)).sorted()
        let differing = paths.filter { p in Set(flat.map { $0[p] ?? "(absent)" }).count > 1 }
        guard !differing.isEmpty else { return "<p>The pipelines are identical.</p>" }
        var html = "<table><tr><th>path</th>" + runs.map { "<th>\(HTML.escape($0.name))</th>" }.joined() + "</tr>"
        for p in differing {
            html += "<tr><td>\(HTML.escape(p))</td>" + flat.map { "<td>\(HTML.escape($0[p] ?? "(absent)"))</td>" }.joined() + "</tr>"
        }
        return html + "</table>"
    }

    /// Leaf values by JSON path (`$.stages.loss.type`), arrays as their JSON text.
    static func flatten(_ value: JSONValue, path: String = "$") -> [String: String] {
        if let entries = value.objectEntries {
            var out: [String: String] = [:]
            for (k, v) in entries { out.merge(flatten(v, path: path + "." + k)) { a, _ in a } }
            return out
        }
        return [path: value.serialized(indent: nil)]
    }

    /// Writes `compare.html` into `directory` for the runs in `runDirectories` (labelled by `names`).
    @discardableResult
    public static func write(runDirectories: [String], names: [String], to directory: String) throws -> String {
        let runs = try zip(runDirectories, names).map { try RunRecord(directory: $0.0, name: $0.1) }
        let path = (directory as NSString).appendingPathComponent("compare.html")
        try Data(html(runs).utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        return path
    }
}

/// Which way a logged value improves, from the type of the stage that logged it.
public enum MetricDirection: Sendable {
    case lower, higher

    /// The direction of `key` (`stage.port`) given the run's pipeline, or nil when the value is
    /// not a metric with a better side (losses, learning rates, counters).
    public static func of(_ key: String, in pipeline: JSONValue) -> MetricDirection? {
        let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2, case .string(let type)? = pipeline["stages"]?[parts[0]]?["type"] else { return nil }
        switch (type, parts[1]) {
        case ("metric.fid", "distance"), ("metric.kid", "mean"), ("metric.modes", "kl"), ("metric.accuracy", "loss"): return .lower
        case ("metric.precisionrecall", _), ("metric.modes", "modes"), ("metric.accuracy", "accuracy"): return .higher
        default: return nil
        }
    }
}
