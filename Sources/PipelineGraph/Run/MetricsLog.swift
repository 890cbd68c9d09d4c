import Foundation

/// `metrics.jsonl`: one JSON object per step with the wall time and every scalar output.
final class MetricsLog {
    private let handle: FileHandle
    let path: String
    /// Wall time already spent before a resume (the last kept line's `time`), so times continue.
    private(set) var resumedSeconds: Double = 0

    /// Opens the log for appending. On resume, lines after `truncatingAfter` (steps that were
    /// logged but not checkpointed) are dropped so the log has each step once.
    init(path: String, truncatingAfter step: Int) throws {
        self.path = path
        let fm = FileManager.default
        if step > 0, let data = fm.contents(atPath: path), let text = String(data: data, encoding: .utf8) {
            let kept = text.split(separator: "\n").filter { line in
                guard let r = line.range(of: "\"step\":") else { return false }
                let digits = line[r.upperBound...].prefix { $0.isNumber || $0 == " " }
                return Int(digits.trimmingCharacters(in: .whitespaces)).map { $0 <= step } ?? false
            }
            try (kept.joined(separator: "\n") + (kept.isEmpty ? "" : "\n")).write(toFile: path, atomically: true, encoding: .utf8)
            if let last = kept.last, let value = try? JSONParser.parse(String(last)).value, case .number(let t)? = value["time"] {
                resumedSeconds = t
            }
        } else {
            _ = fm.createFile(atPath: path, contents: nil)  // a failure shows as the open below failing
        }
        guard let h = FileHandle(forWritingAtPath: path) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        handle = h
        handle.seekToEndOfFile()
    }

    func append(step: Int, seconds: Double, scalars: [(String, Double)]) throws {
        var entries: [(String, JSONValue)] = [("step", .number(Double(step))), ("time", .number((seconds * 1000).rounded() / 1000))]
        // Scalars are Float32 values: print them at Float precision ("0.0002", not "0.00019999999494757503").
        for (k, v) in scalars { entries.append((k, .number(Double(Float(v).description) ?? v))) }
        try handle.write(contentsOf: Data((JSONValue.object(entries).serialized(indent: nil) + "\n").utf8))
    }

    func close() throws {
        try handle.synchronize()
        try handle.close()
    }
}
