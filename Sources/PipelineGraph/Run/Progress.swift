import Foundation

/// Training progress for people: a redrawn bar on a terminal, a plain line every N steps otherwise.
final class Progress {
    let total: Int
    let interactive: Bool
    let every: Int
    private let started = Date()
    private var firstStep: Int
    private var lastDraw = Date.distantPast

    init(total: Int, startStep: Int, every: Int, interactive: Bool = isatty(STDERR_FILENO) == 1) {
        self.total = total
        self.firstStep = startStep
        self.every = every
        self.interactive = interactive
    }

    func update(step: Int, scalars: [(String, Double)]) {
        let elapsed = Date().timeIntervalSince(started)
        let done = step - firstStep
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - step) / rate : 0
        let losses = scalars.prefix(4).map { "\($0.0)=\(String(format: "%.4g", $0.1))" }.joined(separator: " ")
        // Read only when a line is drawn: at most ten times a second.
        var memory: String { Progress.residentMiB().map { " RSS \($0) MiB" } ?? "" }
        if interactive {
            guard Date().timeIntervalSince(lastDraw) > 0.1 || step == total else { return }
            lastDraw = Date()
            let width = 24
            let filled = total > 0 ? width * step / total : width
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            let line = "step \(step)/\(total) [\(bar)] \(String(format: "%.2f", rate)) steps/s ETA \(Progress.duration(eta))\(memory) \(losses)"
            FileHandle.standardError.write(Data(("\r\u{1B}[2K" + line + (step == total ? "\n" : "")).utf8))
        } else if step % every == 0 || step == total {
            let line = "step \(step)/\(total) \(String(format: "%.2f", rate)) steps/s ETA \(Progress.duration(eta))\(memory) \(losses)\n"
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    func finishLine() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    /// The process's resident memory in MiB (Linux's /proc/self/statm), or nil where it cannot be read.
    static func residentMiB() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return (pages * sysconf(Int32(_SC_PAGESIZE))) >> 20
    }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        if t >= 3600 { return "\(t / 3600)h\(String(format: "%02d", t % 3600 / 60))m" }
        if t >= 60 { return "\(t / 60)m\(String(format: "%02d", t % 60))s" }
        return "\(t)s"
    }
}
