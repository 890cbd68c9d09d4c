import Foundation
import Testing

/// TensorBoard's own reader (`EventAccumulator`, from the interop venv `make test-interop`
/// builds) on the event files a run writes: every scalar at every step, the sample grids as PNGs.
@Suite struct TensorBoardInteropTests {
    @Test(.enabled(if: interopPython != nil || runningInCI, Comment(rawValue: interopPythonMissing)))
    func tensorBoardReadsTheEventFiles() throws {
        let python = try requireInteropPython()
        let dir = temporaryDirectory("tensorboard-read")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let summary = try ReportTests().trainSmallRun(dir)
        let script = """
            import json, sys
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
            acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "images": 0})
            acc.Reload()
            tags = acc.Tags()
            out = {"scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]},
                   "images": {t: [[e.step, e.width, e.height, len(e.encoded_image_string)] for e in acc.Images(t)] for t in tags["images"]}}
            print(json.dumps(out))
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", script, dir]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: output) as? [String: [String: [[Double]]]])
        let scalars = try #require(json["scalars"])
        #expect(Set(scalars.keys) == Set(summary.finalScalars.keys))
        for (tag, points) in scalars {
            #expect(points.map { Int($0[0]) } == [1, 2, 3], "\(tag)")
            #expect(Float(points.last![1]) == Float(summary.finalScalars[tag]!), "\(tag)")
        }
        let images = try #require(json["images"]?["samples"])
        #expect(images.map { Int($0[0]) } == [2, 3])
        // 4 images of 16x16 in one row with 2-pixel padding: 4 * 18 + 2 by 20.
        #expect(images.allSatisfy { $0[1] == 74 && $0[2] == 20 && $0[3] > 0 })
    }
}
