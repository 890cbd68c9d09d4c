import Foundation
import PipelineGraph

/// `report.html`: one self-contained page per run (no other file needed to view it) with the loss
/// and metric curves as inline SVG, each image sink's grids behind a slider over the steps (at most
/// `sliderGrids` of them, evenly spaced), the final values and the resolved pipeline.
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
        if run.gridFolders.isEmpty { body += "<p>No sample grids (add a sink.grid stage).</p>" }
        // One script for every slider, so that an error in any leaves sliderReady unset.
        var script = ""
        for (index, folder) in run.gridFolders.enumerated() {
            let s = slider(folder.grids, folder: folder.folder, id: index == 0 ? "" : "\(index)", titled: run.gridFolders.count > 1)
            body += s.html
            script += s.script
        }
        if !run.gridFolders.isEmpty { body += "<script>\n\(script)document.body.dataset.sliderReady = \"yes\";\n</script>" }

        body += "<h2>Pipeline</h2><pre>\(HTML.escape(run.pipeline.serialized()))</pre>"
        return page(title: "GANFlow: \(run.name)", body: body)
    }

    /// Grids a slider offers at most: a long run writes hundreds, and each is embedded.
    static let sliderGrids = 60

    /// `count` indices of `0..<n` spread evenly, the first and the last among them (all of them
    /// when `n <= count`).
    static func spread(_ n: Int, count: Int) -> [Int] {
        guard n > count else { return Array(0..<n) }
        guard count > 1 else { return [n - 1] }
        return (0..<count).map { $0 * (n - 1) / (count - 1) }
    }

    /// One image and a slider over the steps of a folder's grids, the last shown first (ids
    /// `gridStep`, `gridImage`, `gridLabel` followed by `id`), and the script that moves it.
    static func slider(_ all: [(step: Int, path: String)], folder: String, id: String, titled: Bool) -> (html: String, script: String) {
        let grids = spread(all.count, count: sliderGrids).compactMap { i in HTML.dataURI(png: all[i].path).map { (all[i].step, all[i].path, $0) } }
        guard let last = grids.last else { return ("", "") }
        var html = titled ? "<h3>\(HTML.escape(folder))/</h3>" : ""
        if grids.count < all.count {
            html += "<p>\(grids.count) of the \(all.count) grids, evenly spaced; all of them are in \(HTML.escape(folder))/.</p>"
        }
        html += """
            <p><input type="range" id="gridStep\(id)" min="0" max="\(grids.count - 1)" value="\(grids.count - 1)" style="width: 400px">
            step <span id="gridLabel\(id)">\(last.0)</span></p>
            <img class="grid" id="gridImage\(id)" src="\(last.2)"\(HTML.doubledWidth(png: last.1)) alt="\(HTML.escape(folder))">

            """
        let sources = grids.map { "\"\($0.2)\"" }.joined(separator: ",")
        let steps = grids.map { String($0.0) }.joined(separator: ",")
        let script = """
            {
              const gridSources = [\(sources)], gridSteps = [\(steps)];
              document.getElementById("gridStep\(id)").addEventListener("input", e => {
                document.getElementById("gridImage\(id)").src = gridSources[e.target.value];
                document.getElementById("gridLabel\(id)").textContent = gridSteps[e.target.value];
              });
            }

            """
        return (html, script)
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
