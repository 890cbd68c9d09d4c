import Foundation
import PipelineGraph

/// `report.html`: one self-contained page per run (no other file needed to view it) with the loss
/// and metric curves as inline SVG, the sample grid of every logged step behind a slider, the
/// final values and the resolved pipeline.
public enum RunReport {
    /// The page for `run`.
    public static func html(_ run: RunRecord) -> String {
        var body = "<h1>\(HTML.escape(run.name))</h1>"
        var facts: [String] = []
        if let s = run.lastStep { facts.append("\(s) steps") }
        if let t = run.seconds { facts.append(String(format: "%.1f s", t)) }
        facts.append("run directory \(HTML.escape(run.directory))")
        body += "<p>" + facts.joined(separator: ", ") + "</p>"
        if case .string(let d)? = run.pipeline["description"] { body += "<p>\(HTML.escape(d))</p>" }

        body += "<h2>Final values</h2>"
        if run.final.isEmpty {
            body += "<p>No summary (the run did not finish).</p>"
        } else {
            body += "<table><tr><th>value</th><th>final</th></tr>"
            for (k, v) in run.final.sorted(by: { $0.key < $1.key }) {
                body += "<tr><td>\(HTML.escape(k))</td><td>\(HTML.number(v))</td></tr>"
            }
            body += "</table>"
        }

        body += "<h2>Curves</h2><div class=\"charts\">"
        for group in run.chartGroups {
            body += HTML.lineChart(title: group.title, series: group.keys.map { ($0, run.series[$0]!) })
        }
        body += "</div>"

        body += "<h2>Samples</h2>"
        let grids = run.grids.compactMap { g in HTML.dataURI(png: g.path).map { (g.step, $0) } }
        if grids.isEmpty {
            body += "<p>No sample grids (add a sink.grid stage).</p>"
        } else {
            // One image element and a slider over the steps; the last grid shows first.
            let sources = grids.map { "\"\($0.1)\"" }.joined(separator: ",")
            let steps = grids.map { String($0.0) }.joined(separator: ",")
            body += """
                <p><input type="range" id="gridStep" min="0" max="\(grids.count - 1)" value="\(grids.count - 1)" style="width: 400px">
                step <span id="gridLabel">\(grids.last!.0)</span></p>
                <img class="grid" id="gridImage" src="\(grids.last!.1)"\(HTML.doubledWidth(png: run.grids.last!.path)) alt="samples">
                <script>
                const gridSources = [\(sources)], gridSteps = [\(steps)];
                document.getElementById("gridStep").addEventListener("input", e => {
                  document.getElementById("gridImage").src = gridSources[e.target.value];
                  document.getElementById("gridLabel").textContent = gridSteps[e.target.value];
                });
                document.body.dataset.sliderReady = "yes";
                </script>
                """
        }

        body += "<h2>Pipeline</h2><pre>\(HTML.escape(run.pipeline.serialized()))</pre>"
        return page(title: "GANFlow: \(run.name)", body: body)
    }

    /// Writes `report.html` into the run directory and returns its path.
    @discardableResult
    public static func write(runDirectory: String) throws -> String {
        let run = try RunRecord(directory: runDirectory)
        let path = (runDirectory as NSString).appendingPathComponent("report.html")
        try Data(html(run).utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        return path
    }

    static func page(title: String, body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(HTML.escape(title))</title>
        <style>\(HTML.style)</style></head>
        <body>\(body)</body></html>

        """
    }
}
