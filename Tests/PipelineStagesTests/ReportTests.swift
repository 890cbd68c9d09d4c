import Foundation
import PipelineGraph
@testable import PipelineStages
@testable import Reporting
import Testing
import TensorRuntime

/// A reader of the protobuf wire format, to check what the writer encodes.
struct ProtoFields {
    enum Value: Equatable { case varint(UInt64), fixed64(UInt64), fixed32(UInt32), bytes([UInt8]) }
    var fields: [(Int, Value)] = []

    init(_ bytes: [UInt8]) throws {
        var i = 0
        func varint() throws -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard i < bytes.count else { throw TensorError("truncated varint") }
                let b = bytes[i]; i += 1
                v |= UInt64(b & 0x7F) << shift
                if b < 0x80 { return v }
                shift += 7
            }
        }
        func fixed(_ n: Int) throws -> UInt64 {
            guard i + n <= bytes.count else { throw TensorError("truncated fixed") }
            let v = (0..<n).reduce(UInt64(0)) { $0 | UInt64(bytes[i + $1]) << (8 * $1) }
            i += n
            return v
        }
        while i < bytes.count {
            let key = try varint()
            let field = Int(key >> 3)
            switch key & 7 {
            case 0: fields.append((field, .varint(try varint())))
            case 1: fields.append((field, .fixed64(try fixed(8))))
            case 5: fields.append((field, .fixed32(UInt32(try fixed(4)))))
            case 2:
                let n = Int(try varint())
                guard i + n <= bytes.count else { throw TensorError("truncated bytes") }
                fields.append((field, .bytes(Array(bytes[i..<(i + n)]))))
                i += n
            default: throw TensorError("wire type \(key & 7)")
            }
        }
    }

    func all(_ field: Int) -> [Value] { fields.filter { $0.0 == field }.map(\.1) }
    func bytes(_ field: Int) -> [UInt8]? { if case .bytes(let b)? = all(field).first { return b }; return nil }

    /// The first embedded message of `field`.
    func message(_ field: Int) throws -> ProtoFields {
        guard let b = bytes(field) else { throw TensorError("no field \(field)") }
        return try ProtoFields(b)
    }
}

/// Splits an event file into its records, checking both masked CRCs of each.
func tfRecords(_ data: [UInt8]) throws -> [[UInt8]] {
    var records: [[UInt8]] = [], i = 0
    func u32(_ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(data[at + $1]) << (8 * $1) } }
    while i < data.count {
        let lengthBytes = Array(data[i..<(i + 8)])
        let length = (0..<8).reduce(0) { $0 | Int(lengthBytes[$1]) << (8 * $1) }
        guard u32(i + 8) == CRC32C.masked(lengthBytes) else { throw TensorError("bad length CRC at \(i)") }
        let payload = Array(data[(i + 12)..<(i + 12 + length)])
        guard u32(i + 12 + length) == CRC32C.masked(payload) else { throw TensorError("bad data CRC at \(i)") }
        records.append(payload)
        i += 16 + length
    }
    return records
}

@Suite struct ReportTests {
    @Test func crc32cAndTFRecordFraming() throws {
        // The check value of CRC-32C (RFC 3720).
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        let framed = TFRecord.frame([1, 2, 3])
        #expect(framed.count == 8 + 4 + 3 + 4)
        #expect(Array(framed[0..<8]) == [3, 0, 0, 0, 0, 0, 0, 0])
        #expect(try tfRecords(framed) == [[1, 2, 3]])
    }

    @Test func eventsEncodeTheFieldsTensorBoardReads() throws {
        let scalar = try ProtoFields(TensorBoardEvent.scalars([("loss.generator", 0.75), ("fid.distance", 12.5)], step: 300, wallTime: 1.5))
        #expect(scalar.all(1) == [.fixed64(1.5.bitPattern)])
        #expect(scalar.all(2) == [.varint(300)])
        let summary = try scalar.message(5)
        let values = try summary.all(1).map { v -> (String, Float) in
            guard case .bytes(let b) = v else { throw TensorError("not a message") }
            let f = try ProtoFields(b)
            guard case .fixed32(let bits)? = f.all(2).first else { throw TensorError("no simple_value") }
            return (String(decoding: f.bytes(1) ?? [], as: UTF8.self), Float(bitPattern: bits))
        }
        #expect(values.map(\.0) == ["loss.generator", "fid.distance"] && values.map(\.1) == [0.75, 12.5])
        let image = try ProtoFields(TensorBoardEvent.image(tag: "samples", png: [9, 8, 7], width: 20, height: 10, channels: 1, step: 4, wallTime: 0))
        let encoded = try image.message(5).message(1).message(4)
        #expect(encoded.all(1) == [.varint(10)] && encoded.all(2) == [.varint(20)] && encoded.all(3) == [.varint(1)])
        #expect(encoded.bytes(4) == [9, 8, 7])
        let version = try ProtoFields(TensorBoardEvent.fileVersion(wallTime: 2))
        #expect(version.bytes(3).map { String(decoding: $0, as: UTF8.self) } == "brain.Event:2")
    }

    /// A short GAN run with a grid sink, TensorBoard scalars and images.
    func trainSmallRun(_ dir: String, loss: String = "loss.hinge", steps: Int = 3) throws -> RunSummary {
        let stages = ExportTests.stages().replacingOccurrences(of: "loss.hinge", with: loss) + """
            , "grid": { "type": "sink.grid", "input": "G.images", "every": 2 },
              "tb": { "type": "sink.tensorboard", "images": { "samples": "G.images" }, "every": 2 },
              "balance": { "type": "metric.balance", "real": "D.real", "fake": "D.fake" }
            """
        let doc = try PipelineDocument.parse(#"{ "name": "small", "seed": 1, "steps": \#(steps), "stages": { \#(stages) }, "schedule": [{ "run": "optD" }, { "run": "optG" }] }"#,
                                             file: "small.json")
        let p = try PipelineBuilder(registry: ganTestRegistry).build(doc, outputDirectory: dir)
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        options.observers = [try TensorBoardScalars(runDirectory: dir)]
        return try Runner(pipeline: p, options: options).run()
    }

    @Test func runsWriteEventFilesOfScalarsAndImages() throws {
        let dir = temporaryDirectory("tensorboard")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let summary = try trainSmallRun(dir)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("events.out.tfevents.") }.sorted()
        #expect(files.count == 2)
        let scalarFile = try #require(files.first { $0.hasSuffix(".scalars") })
        let records = try tfRecords(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + scalarFile))))
        #expect(records.count == 1 + 3, "the version event, then one event per step")
        let last = try ProtoFields(records[3])
        #expect(last.all(2) == [.varint(3)])
        let tags = try last.message(5).all(1).compactMap { v -> String? in
            guard case .bytes(let b) = v else { return nil }
            return try ProtoFields(b).bytes(1).map { String(decoding: $0, as: UTF8.self) }
        }
        #expect(Set(tags) == Set(summary.finalScalars.keys))
        let imageFile = try #require(files.first { $0.hasSuffix(".images.tb") })
        let images = try tfRecords(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + imageFile))))
        #expect(images.count == 1 + 2, "the version event, then steps 2 and 3 (the last)")
        let encoded = try #require(try ProtoFields(images[1]).message(5).message(1).message(4).bytes(4))
        #expect(Array(encoded.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "a PNG")
    }

    @Test func reportHoldsCurvesGridsValuesAndThePipelineInOneFile() throws {
        let dir = temporaryDirectory("report")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try trainSmallRun(dir, steps: 4)
        let path = try RunReport.write(runDirectory: dir)
        let html = try String(contentsOfFile: path, encoding: .utf8)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<h1>small</h1>"))
        // Losses in one chart, the balance monitor in another, each optimizer in its own.
        #expect(html.components(separatedBy: "<svg").count - 1 == 4, "losses, balance, and each optimizer's lr and skipped")
        #expect(html.contains(">loss.discriminator</text>") && html.contains(">balance.real</text>"))
        // Grids of steps 2 and 4 behind the slider, embedded.
        #expect(html.contains("gridSteps = [2,4]"))
        // The 74x20 grid shown at twice its size.
        #expect(html.contains(#"id="gridImage" src="data:image/png;base64,"#) && html.contains(#" width="148" alt="samples">"#))
        #expect(html.components(separatedBy: "data:image/png;base64,").count - 1 == 3, "two in the script, the shown one in the img")
        // Self-contained: nothing is fetched.
        #expect(!html.contains("src=\"http") && !html.contains("href=\"http"))
        #expect(html.contains("&quot;type&quot;: &quot;generator.dcgan&quot;"))
    }

    /// Debian's chromium (Scripts/setup.sh installs it), to load reports in a real browser; the
    /// environment's GANFLOW_CHROMIUM names another.
    static let chromium: String? = (ProcessInfo.processInfo.environment["GANFLOW_CHROMIUM"].map { [$0] }
        ?? ["/usr/bin/chromium", "/usr/bin/chromium-browser"]).first { FileManager.default.isExecutableFile(atPath: $0) }
    /// Under CI the browser tests must run: a missing Chromium fails them instead of skipping them.
    static let inCI = ProcessInfo.processInfo.environment["CI"] == "true"
    static let browserTrait: ConditionTrait = .enabled(
        if: chromium != nil || inCI, "chromium is not installed (Scripts/setup.sh, or apt-get install chromium) to load report.html headless")

    /// The document Chromium builds from `path` after running its scripts (headless, without the
    /// sandbox, which Chromium refuses to use as root). Fails the test when there is no Chromium
    /// or it does not exit cleanly within a minute.
    func domInChromium(_ path: String, profile: String) throws -> String? {
        guard let chromium = Self.chromium else {
            Issue.record("CI=true but Chromium is missing (no /usr/bin/chromium, or GANFLOW_CHROMIUM is not executable): Scripts/setup.sh installs Debian's chromium so the report is checked in a real browser")
            return nil
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: chromium)
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile)", "--dump-dom", "file://" + path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let watchdog = DispatchWorkItem { p.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + 60, execute: watchdog)
        let dom = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        watchdog.cancel()
        #expect(p.terminationReason == .exit && p.terminationStatus == 0, "chromium exited with \(p.terminationStatus)")
        return dom
    }

    /// What the browser must show: the slider script ran to its end (a syntax or reference error
    /// would stop it), and the charts and the grid are in the document it built.
    static func reportWorks(_ dom: String) -> Bool {
        dom.contains(#"data-slider-ready="yes""#) && dom.components(separatedBy: "<polyline").count - 1 >= 4
            && dom.contains(#"id="gridImage""#)
    }

    @Test(browserTrait)
    func chromiumLoadsTheReportAndRunsItsScript() throws {
        let dir = temporaryDirectory("report-chromium")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try trainSmallRun(dir, steps: 2)
        // A second image sink's folder gets a slider of its own.
        try FileManager.default.copyItem(atPath: dir + "/samples", toPath: dir + "/classgrid")
        let path = try RunReport.write(runDirectory: dir)
        guard let dom = try domInChromium(path, profile: dir + "/chromium") else { return }
        #expect(Self.reportWorks(dom))
        #expect(dom.contains(#"id="gridImage1""#) && dom.contains("<h3>classgrid/</h3>"))

        // The same report with a syntax error in its script, or without its charts, fails the check.
        let html = try String(contentsOfFile: path, encoding: .utf8)
        let brokenScript = dir + "/broken-script.html", noCharts = dir + "/no-charts.html"
        try html.replacingOccurrences(of: "const gridSources = [", with: "const gridSources = [,,;")
            .write(toFile: brokenScript, atomically: true, encoding: .utf8)
        try html.replacingOccurrences(of: "<polyline", with: "<line").write(toFile: noCharts, atomically: true, encoding: .utf8)
        for broken in [brokenScript, noCharts] {
            guard let dom = try domInChromium(broken, profile: dir + "/chromium") else { return }
            #expect(dom.contains(#"id="gridImage""#), "chromium loaded \(broken)")
            #expect(!Self.reportWorks(dom), "\(broken) passed the check")
        }
    }

    /// A run directory written by hand: pipeline, metrics and summary.
    func fakeRun(_ dir: String, name: String, lossType: String, fid: Double, precision: Double,
                 secondsPerStep: Double = 0.1) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try """
            { "name": "\(name)", "seed": 1, "stages": { "loss": { "type": "\(lossType)" }, "fid": { "type": "metric.fid" },
              "pr": { "type": "metric.precisionrecall" } } }
            """.write(toFile: dir + "/pipeline.json", atomically: true, encoding: .utf8)
        try """
            {"step":1,"time":\(secondsPerStep),"loss.generator":1.5}
            {"step":2,"time":\(2 * secondsPerStep),"loss.generator":1.25,"fid.distance":\(fid + 5),"pr.precision":\(precision)}
            {"step":3,"time":\(3 * secondsPerStep),"loss.generator":1,"fid.distance":\(fid),"pr.precision":\(precision)}

            """.write(toFile: dir + "/metrics.jsonl", atomically: true, encoding: .utf8)
        try """
            { "pipeline": "\(name)", "steps": 3, "lastStep": 3, "seconds": \(3 * secondsPerStep), "interrupted": false,
              "final": { "fid.distance": \(fid), "loss.generator": 1, "pr.precision": \(precision) } }
            """.write(toFile: dir + "/summary.json", atomically: true, encoding: .utf8)
    }

    @Test func comparisonMarksTheBestMetricsAndListsPipelineDifferences() throws {
        let dir = temporaryDirectory("compare")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try fakeRun(dir + "/a", name: "p", lossType: "loss.hinge", fid: 30, precision: 0.5, secondsPerStep: 30)
        try fakeRun(dir + "/b", name: "p", lossType: "loss.lsgan", fid: 20, precision: 0.25, secondsPerStep: 60)
        let a = try RunRecord(directory: dir + "/a", name: "hinge")
        #expect(a.series["fid.distance"]!.map(\.step) == [2, 3] && a.series["loss.generator"]!.map(\.value) == [1.5, 1.25, 1])
        // Steps 2 and 3 at 60 and 90 s of wall-clock.
        #expect(a.againstMinutes("fid.distance").map(\.x) == [1, 1.5] && a.againstMinutes("fid.distance").map(\.value) == [35, 30])
        #expect(a.chartGroups.map(\.title) == ["losses", "fid", "pr"])
        let path = try CompareReport.write(runDirectories: [dir + "/a", dir + "/b"], names: ["hinge", "lsgan"], to: dir)
        let html = try String(contentsOfFile: path, encoding: .utf8)
        // Lower FID wins for lsgan, higher precision for hinge; losses are not ranked.
        #expect(html.contains("<td class=\"best\">20</td>") && html.contains("<td class=\"best\">0.5</td>"))
        #expect(html.components(separatedBy: "class=\"best\"").count - 1 == 2)
        #expect(html.contains("<tr><td>$.stages.loss.type</td><td>&quot;loss.hinge&quot;</td><td>&quot;loss.lsgan&quot;</td></tr>"))
        #expect(!html.contains("$.stages.fid.type"), "only differing paths are listed")
        // One column per run; how far each run got in how long leads, unranked.
        #expect(html.contains("<tr><th>value</th><th>hinge</th><th>lsgan</th></tr><tr><td>steps</td><td>3</td><td>3</td></tr><tr><td>minutes</td><td>1.5</td><td>3.0</td></tr>"))
        #expect(html.contains("<tr><td>fid.distance</td><td>30</td><td class=\"best\">20</td></tr>"))
        // One overlaid chart per scalar over steps, then each metric (not the loss) over minutes.
        #expect(html.components(separatedBy: "<svg").count - 1 == 5, "three charts over steps and two over minutes")
        let wallClock = try #require(html.components(separatedBy: "<h2>Metrics against wall-clock</h2>").last)
        #expect(wallClock.components(separatedBy: ">minutes</text>").count - 1 == 2)
        #expect(wallClock.contains(">fid.distance</text>") && !wallClock.contains(">loss.generator</text>"))

        // A log without times (written by hand, say) gives no wall-clock charts rather than empty ones.
        for run in ["a", "b"] {
            let log = dir + "/\(run)/metrics.jsonl"
            try String(contentsOfFile: log, encoding: .utf8)
                .replacingOccurrences(of: #""time":[0-9.]+,"#, with: "", options: .regularExpression)
                .write(toFile: log, atomically: true, encoding: .utf8)
        }
        let plain = try String(contentsOfFile: try CompareReport.write(runDirectories: [dir + "/a", dir + "/b"], names: ["hinge", "lsgan"], to: dir), encoding: .utf8)
        #expect(!plain.contains("against wall-clock") && plain.components(separatedBy: "<svg").count - 1 == 3)
        #expect(MetricDirection.of("fid.distance", in: a.pipeline) == .lower)
        #expect(MetricDirection.of("loss.generator", in: a.pipeline) == nil)
    }

    /// Every folder of step grids gets a slider, samples/ first; a slider holds at most
    /// `sliderGrids` of them, evenly spaced from the first to the last, and says so.
    @Test func everyGridFolderGetsASliderOfAtMostSixtyGrids() throws {
        let dir = temporaryDirectory("grid-folders")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try fakeRun(dir, name: "p", lossType: "loss.hinge", fid: 30, precision: 0.5)
        for (folder, steps) in [("samples", Array(1...100)), ("classgrid", [10, 20, 30]), ("checkpoints", []), ("s10k", [])] {
            try FileManager.default.createDirectory(atPath: dir + "/" + folder, withIntermediateDirectories: true)
            for step in steps { try Data([UInt8(step)]).write(to: URL(fileURLWithPath: dir + "/\(folder)/step-\(String(format: "%08d", step)).png")) }
        }
        try Data([0]).write(to: URL(fileURLWithPath: dir + "/s10k/sample-00000.png"))
        let run = try RunRecord(directory: dir)
        #expect(run.gridFolders.map(\.folder) == ["samples", "classgrid"])
        #expect(run.grids.map(\.step) == Array(1...100))
        #expect(RunReport.spread(100, count: 60).count == 60)
        #expect(RunReport.spread(100, count: 60).first == 0 && RunReport.spread(100, count: 60).last == 99)
        #expect(Set(RunReport.spread(100, count: 60)).count == 60)
        #expect(RunReport.spread(3, count: 60) == [0, 1, 2])
        let html = RunReport.html(run)
        #expect(html.contains("60 of the 100 grids, evenly spaced; all of them are in samples/."))
        #expect(html.contains(#"id="gridStep" min="0" max="59""#) && html.contains(#"id="gridStep1" min="0" max="2""#))
        #expect(html.contains("gridSteps = [10,20,30]") && html.contains("<h3>samples/</h3>") && html.contains("<h3>classgrid/</h3>"))
        let steps = try #require(html.components(separatedBy: "gridSteps = [").dropFirst().first?.prefix { $0 != "]" })
        let shown = steps.split(separator: ",").compactMap { Int($0) }
        #expect(shown.count == 60 && shown.first == 1 && shown.last == 100 && shown == shown.sorted())
        // 60 + 3 in the scripts, and the two shown.
        #expect(html.components(separatedBy: "data:image/png;base64,").count - 1 == 65)
    }

    /// A growing run's grids carry tags after the step (`sink.grid`'s `tags`): they are its grids
    /// too, in step order; other files are not.
    @Test func taggedGridsAreFoundByStep() throws {
        let dir = temporaryDirectory("tagged-grids")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try fakeRun(dir, name: "p", lossType: "loss.hinge", fid: 30, precision: 0.5, secondsPerStep: 30)
        try FileManager.default.createDirectory(atPath: dir + "/samples", withIntermediateDirectories: true)
        for file in ["step-00000010-resolution32-alpha1.000.png", "step-00000002-resolution4-alpha1.000.png", "step-00000005.png",
                     "step-12abc.png", "step-.png", "step-00000007-resolution8.txt", "final.png"] {
            try Data([0]).write(to: URL(fileURLWithPath: dir + "/samples/" + file))
        }
        let run = try RunRecord(directory: dir)
        #expect(run.grids.map(\.step) == [2, 5, 10])
        #expect(run.grids.last?.path.hasSuffix("/samples/step-00000010-resolution32-alpha1.000.png") == true)
    }

    /// A long series (a loss logged every step) is drawn faint with its moving average over it; a
    /// short one (a metric every 500 steps) as it is. The average is debiased: a constant stays
    /// constant from the first value, and it follows a step with the weight of its window.
    @Test func longSeriesAreDrawnWithTheirMovingAverage() {
        func lines(_ n: Int) -> [String] {
            HTML.lineChart(title: "loss", series: [("loss", (0..<n).map { (step: $0, value: Double($0 % 7)) })])
                .components(separatedBy: "<polyline").dropFirst().map { String($0.prefix { $0 != ">" }) }
        }
        #expect(lines(HTML.smoothingFrom - 1).count == 1 && !lines(HTML.smoothingFrom - 1)[0].contains("smoothed"))
        let long = lines(1000)
        #expect(long.count == 2 && long[0].contains("stroke-opacity=\"0.2\"") && long[1].contains("class=\"smoothed\""))
        #expect(HTML.smoothed([2, 2, 2, 2], window: 10) == [2, 2, 2, 2])
        let step = HTML.smoothed([0, 0, 1, 1], window: 2)  // weight 0.5
        #expect(step[0] == 0 && step[1] == 0 && abs(step[2] - 4.0 / 7) < 1e-12 && abs(step[3] - 12.0 / 15) < 1e-12, "\(step)")
        #expect(HTML.smoothed([5, 1], window: 0.5) == [5, 1])  // a window of one value or less: no smoothing
    }

    /// A polyline keeps at most the first, lowest, highest and last vertex of each pixel column:
    /// a loss logged at every one of 20,000 steps becomes a few hundred vertices per line, with
    /// its one spike and its lowest value still drawn; a short series keeps every vertex.
    @Test func longPolylinesKeepOnlyWhatTheirPixelsShow() throws {
        func vertices(_ svg: String) -> [[(x: Double, y: Double)]] {
            svg.components(separatedBy: "points=\"").dropFirst().map { part in
                part.prefix { $0 != "\"" }.split(separator: " ").map { pair in
                    let xy = pair.split(separator: ",").map { Double($0)! }
                    return (xy[0], xy[1])
                }
            }
        }
        let n = 20_000
        let values = (0..<n).map { i -> Double in i == 12_345 ? 50 : (i == 777 ? -3 : Double(i % 10)) }
        let svg = HTML.lineChart(title: "loss", series: [("loss", values.enumerated().map { (step: $0.offset, value: $0.element) })])
        let lines = vertices(svg)
        #expect(lines.count == 2)  // every value, and the moving average
        let raw = try #require(lines.first)
        let columns = Set(raw.map { $0.x.rounded(.down) }).count
        #expect(raw.count <= 4 * columns && columns <= 520, "\(raw.count) vertices in \(columns) columns")
        // The chart spans -3 to 50: the spike is the top of the plot, the dip its bottom.
        #expect(raw.map(\.y).min() == 24.0 && raw.map(\.y).max() == 230.0)
        #expect(raw.first!.x == 58.0 && raw.last!.x == 508.0)
        let xs = raw.map(\.x)
        #expect(xs == xs.sorted())

        let short = vertices(HTML.lineChart(title: "fid", series: [("fid", (0..<40).map { (step: 500 * $0, value: Double(40 - $0)) })]))
        #expect(short.first?.count == 40)

        // Consecutive vertices of one column: first, lowest, highest, last, in their order.
        let column: [(x: Double, y: Double)] = [(10.1, 5), (10.2, 9), (10.3, 1), (10.4, 7), (10.9, 6), (11.0, 2)]
        #expect(HTML.visibleVertices(column).map(\.y) == [5, 9, 1, 6, 2])
    }

    /// A run keeps its colour in every chart of a comparison: in a chart where the first run has
    /// no values (a loss only the second pipeline has), the second is still drawn in the second
    /// colour, and the legend lists it alone.
    @Test func aSeriesKeepsItsColourWhenAnEarlierOneIsEmpty() {
        let svg = HTML.lineChart(title: "loss.penalty",
                                 series: [("dcgan", []), ("stylegan2", [(step: 1, value: 0.5), (step: 2, value: 0.25)])])
        #expect(svg.contains("stroke=\"\(HTML.palette[1])\""))
        #expect(!svg.contains(HTML.palette[0]))
        #expect(svg.contains(">stylegan2</text>") && !svg.contains(">dcgan</text>"))
        let both = HTML.lineChart(title: "fid", series: [("dcgan", [(step: 1, value: 3)]), ("stylegan2", [(step: 1, value: 2), (step: 2, value: 1)])])
        #expect(both.contains("fill=\"\(HTML.palette[0])\"") && both.contains("stroke=\"\(HTML.palette[1])\""))
    }
}
