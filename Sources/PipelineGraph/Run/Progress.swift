import Foundation

/// Training progress for people: a redrawn bar on a terminal, a plain line every N steps otherwise.
///
/// Under a time limit the run ends at whichever comes first, the last step or the limit, and the
/// bar and the ETA say so: `--steps 1000000 --time-limit 30m` shows the 30 minutes, not a day.
final class Progress {
    let total: Int
    let interactive: Bool
    let every: Int
    /// The run's time limit in seconds, and the run's seconds before this session (a resume).
    let timeLimit: Double?
    let resumedSeconds: Double
    /// When this session's steps began: the runner's own clock, so that both count the same seconds.
    let started: Date
    private let firstStep: Int
    private var lastDraw = Date.distantPast
    /// A redrawn line is on the terminal, not yet ended.
    private var lineOpen = false

    init(total: Int, startStep: Int, every: Int, timeLimit: Double? = nil, resumedSeconds: Double = 0,
         started: Date = Date(), interactive: Bool = isatty(STDERR_FILENO) == 1) {
        self.total = total
        self.firstStep = startStep
        self.every = every
        self.timeLimit = timeLimit
        self.resumedSeconds = resumedSeconds
        self.started = started
        self.interactive = interactive
    }

    /// Where a run stands: the share of it done (0...1) and the seconds left, by steps or by the
    /// time limit, whichever ends it first; `byTime` when the limit does.
    struct Estimate: Equatable {
        var fraction: Double
        var secondsLeft: Double
        var byTime: Bool
    }

    /// `rate`: this session's steps per second (0 before it is known); `runSeconds`: the run's
    /// clock, resumes included.
    static func estimate(step: Int, total: Int, rate: Double, runSeconds: Double, timeLimit: Double?) -> Estimate {
        let bySteps = Estimate(fraction: total > 0 ? min(1, Double(step) / Double(total)) : 1,
                               secondsLeft: rate > 0 ? Double(total - step) / rate : 0, byTime: false)
        guard let limit = timeLimit, limit > 0 else { return bySteps }
        let byTime = Estimate(fraction: min(1, runSeconds / limit), secondsLeft: max(0, limit - runSeconds), byTime: true)
        // Before the rate is known, the limit is the only bound there is.
        return rate > 0 && bySteps.secondsLeft <= byTime.secondsLeft ? bySteps : byTime
    }

    /// Shows the step; `last`: the run's final step (the schedule's end, the time limit or a
    /// Ctrl-C), always shown, and on a terminal the line is ended.
    func update(step: Int, scalars: [(String, Double)], last: Bool = false) {
        let last = last || step == total
        let elapsed = Date().timeIntervalSince(started)
        let done = step - firstStep
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let estimate = Progress.estimate(step: step, total: total, rate: rate, runSeconds: resumedSeconds + elapsed,
                                         timeLimit: timeLimit)
        let eta = "ETA \(Progress.duration(estimate.secondsLeft))\(estimate.byTime ? " (time limit)" : "")"
        let losses = scalars.prefix(4).map { "\($0.0)=\(String(format: "%.4g", $0.1))" }.joined(separator: " ")
        // Read only when a line is drawn: at most ten times a second.
        var memory: String { Progress.residentMiB().map { " RSS \($0) MiB" } ?? "" }
        if interactive {
            guard Date().timeIntervalSince(lastDraw) > 0.1 || last else { return }
            lastDraw = Date()
            let width = 24
            let filled = min(width, Int((Double(width) * estimate.fraction).rounded(.down)))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            let line = "step \(step)/\(total) [\(bar)] \(String(format: "%.2f", rate)) steps/s \(eta)\(memory) \(losses)"
            FileHandle.standardError.write(Data(("\r\u{1B}[2K" + line + (last ? "\n" : "")).utf8))
            lineOpen = !last
        } else if step % every == 0 || last {
            let line = "step \(step)/\(total) \(String(format: "%.2f", rate)) steps/s \(eta)\(memory) \(losses)\n"
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    /// Ends a redrawn line left open by a run that stops on an error, so that the error starts a line.
    func endLine() {
        if lineOpen { FileHandle.standardError.write(Data("\n".utf8)) }
        lineOpen = false
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
