import Foundation
import ImageIO

/// Small builders for the self-contained HTML reports: escaping, inline SVG line charts, embedded
/// PNGs.
public enum HTML {
    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    /// A PNG file as a data URI, so the page needs no other file.
    static func dataURI(png path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return "data:image/png;base64," + data.base64EncodedString()
    }

    /// ` width="..."` showing a PNG at twice its size (sample grids of 28x28 images are small),
    /// or nothing when its header cannot be read.
    static func doubledWidth(png path: String) -> String {
        guard let info = try? PNG.info(path) else { return "" }
        return " width=\"\(2 * info.width)\""
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]

    static func number(_ x: Double) -> String {
        if x == x.rounded(), abs(x) < 1e9 { return String(Int(x)) }
        return String(format: "%.4g", x)
    }

    /// An SVG line chart of several series over steps, with axes, five ticks per axis and a legend.
    public static func lineChart(title: String, series: [(label: String, points: [(step: Int, value: Double)])],
                          width: Int = 520, height: Int = 260) -> String {
        lineChart(title: title, axis: "step", integerTicks: true,
                  series: series.map { s in (s.label, s.points.map { (Double($0.step), $0.value) }) },
                  width: width, height: height)
    }

    /// An SVG line chart of several series over any x axis (`axis` names it: "minutes" for
    /// wall-clock), with five ticks per axis (rounded to whole numbers with `integerTicks`) and a legend.
    ///
    /// A series of `smoothingFrom` values or more (a loss logged every step) is drawn twice, as
    /// TensorBoard draws it: every value as a faint line, and over it a moving average (`smoothed`)
    /// spanning about a fiftieth of the series, which shows the trend the step-to-step noise hides.
    public static func lineChart(title: String, axis: String, integerTicks: Bool = false,
                                 series: [(label: String, points: [(x: Double, value: Double)])],
                                 width: Int = 520, height: Int = 260) -> String {
        // A series keeps its colour by its place in `series` even when an earlier one is empty, so
        // that a run has one colour in every chart of a comparison.
        let plotted = series.enumerated().filter { !$0.element.points.isEmpty }
        let all = plotted.flatMap(\.element.points).filter { $0.value.isFinite }
        guard let minX = all.map(\.x).min(), let maxX = all.map(\.x).max(),
              var low = all.map(\.value).min(), var high = all.map(\.value).max() else {
            return "<svg width=\"\(width)\" height=\"40\"><text x=\"4\" y=\"20\">\(escape(title)): no values</text></svg>"
        }
        if low == high { low -= 0.5; high += 0.5 }
        let left = 58.0, right = 12.0, top = 24.0, bottom = 30.0
        let legendHeight = Double(plotted.count) * 16
        let plotWidth = Double(width) - left - right, plotHeight = Double(height) - top - bottom
        let span = maxX > minX ? maxX - minX : 1
        func x(_ v: Double) -> Double { left + (v - minX) / span * plotWidth }
        func y(_ v: Double) -> Double { top + (high - v) / (high - low) * plotHeight }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(Int(Double(height) + legendHeight))\" class=\"chart\">"
        svg += "<text x=\"\(left)\" y=\"16\" font-weight=\"bold\">\(escape(title))</text>"
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(plotWidth)\" height=\"\(plotHeight)\" fill=\"none\" stroke=\"#999\"/>"
        for i in 0...4 {
            let v = low + (high - low) * Double(i) / 4, yy = y(v)
            svg += "<line x1=\"\(left)\" y1=\"\(yy)\" x2=\"\(left + plotWidth)\" y2=\"\(yy)\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(left - 4)\" y=\"\(yy + 4)\" text-anchor=\"end\" font-size=\"10\">\(number(v))</text>"
            var tick = minX + (maxX - minX) * Double(i) / 4
            if integerTicks { tick = tick.rounded() }
            svg += "<text x=\"\(x(tick))\" y=\"\(top + plotHeight + 14)\" text-anchor=\"middle\" font-size=\"10\">\(number(tick))</text>"
        }
        svg += "<text x=\"\(left + plotWidth / 2)\" y=\"\(top + plotHeight + 27)\" text-anchor=\"middle\" font-size=\"10\">\(escape(axis))</text>"
        for (i, (index, s)) in plotted.enumerated() {
            let color = palette[index % palette.count]
            let points = s.points.filter { $0.value.isFinite }
            func polyline(_ values: [(x: Double, value: Double)], _ attributes: String) -> String {
                let vertices = visibleVertices(values.map { (x($0.x), y($0.value)) })
                let coordinates = vertices.map { String(format: "%.1f,%.1f", $0.x, $0.y) }.joined(separator: " ")
                return "<polyline fill=\"none\" stroke=\"\(color)\" \(attributes) points=\"\(coordinates)\"/>"
            }
            if points.count == 1 {
                svg += "<circle cx=\"\(x(points[0].x))\" cy=\"\(y(points[0].value))\" r=\"3\" fill=\"\(color)\"/>"
            } else if points.count >= smoothingFrom {
                svg += polyline(points, "stroke-width=\"0.5\" stroke-opacity=\"0.2\"")
                let values = smoothed(points.map(\.value), window: Double(points.count) / 50)
                svg += polyline(zip(points, values).map { ($0.x, $1) }, "stroke-width=\"2\" class=\"smoothed\"")
            } else {
                svg += polyline(points, "stroke-width=\"1.5\"")
            }
            let ly = Double(height) + Double(i) * 16 + 4
            svg += "<rect x=\"\(left)\" y=\"\(ly)\" width=\"10\" height=\"10\" fill=\"\(color)\"/>"
            svg += "<text x=\"\(left + 14)\" y=\"\(ly + 9)\" font-size=\"11\">\(escape(s.label))</text>"
        }
        return svg + "</svg>"
    }

    /// The vertices of a polyline (in pixels, x not decreasing) that draw the same picture: within
    /// each pixel column only the first, lowest, highest and last vertex, in their order, change
    /// what is drawn (M4 aggregation; Jugel et al., 2014). A loss logged every step of a long run
    /// has tens of thousands of values for a chart a few hundred pixels wide; all of them made
    /// `report.html` of a 30-minute run 12 MB, mostly coordinates no one could see.
    public static func visibleVertices(_ vertices: [(x: Double, y: Double)]) -> [(x: Double, y: Double)] {
        var kept: [(x: Double, y: Double)] = []
        kept.reserveCapacity(min(vertices.count, 4 * 1024))
        var start = 0
        while start < vertices.count {
            let column = vertices[start].x.rounded(.down)
            var end = start + 1
            while end < vertices.count, vertices[end].x.rounded(.down) == column { end += 1 }
            var lowest = start, highest = start
            for i in start..<end {
                if vertices[i].y < vertices[lowest].y { lowest = i }
                if vertices[i].y > vertices[highest].y { highest = i }
            }
            for i in Set([start, lowest, highest, end - 1]).sorted() { kept.append(vertices[i]) }
            start = end
        }
        return kept
    }

    /// Series of at least this many values are drawn with a moving average over them.
    public static let smoothingFrom = 100

    /// The exponential moving average of `values` over about `window` values (weight
    /// 1 - 1 / window), debiased at the start as TensorBoard's smoothing is, so that the first
    /// values are not pulled towards 0.
    public static func smoothed(_ values: [Double], window: Double) -> [Double] {
        let weight = 1 - 1 / max(window, 1)
        var average = 0.0, correction = 1.0
        return values.map { v in
            average = weight * average + (1 - weight) * v
            correction *= weight
            return correction < 1 ? average / (1 - correction) : v
        }
    }

    static let style = """
        body { font-family: sans-serif; margin: 24px; color: #222; }
        table { border-collapse: collapse; margin: 8px 0 20px; }
        td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
        th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
        td.best { font-weight: bold; background: #e6f4e6; }
        pre { background: #f8f8f8; padding: 8px; overflow-x: auto; font-size: 12px; }
        .charts { display: flex; flex-wrap: wrap; gap: 16px; }
        .grids { display: flex; flex-wrap: wrap; gap: 16px; } figure { margin: 0; }
        img.grid { image-rendering: pixelated; max-width: 100%; }
        """
}
