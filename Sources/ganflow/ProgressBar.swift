import Foundation

/// A one-line progress bar on standard error, redrawn in place when it is a terminal. Off a
/// terminal it writes one line per tenth, unless `terminalOnly` (commands whose standard error
/// scripts often read with their output, such as `score --json`) keeps it silent there.
final class ProgressBar {
    private let enabled: Bool
    private let terminal = isatty(2) != 0
    private let label: String
    private var last = -1
    private var drawn = false

    init(enabled: Bool, label: String = "", terminalOnly: Bool = false) {
        self.enabled = enabled && (terminal || !terminalOnly)
        self.label = label.isEmpty ? "" : label + " "
    }

    func show(_ done: Int, _ total: Int) {
        guard enabled, total > 0 else { return }
        let width = 30
        let filled = min(done, total) * width / total
        // Off a terminal, one line per tenth, not one per chunk.
        let step = terminal ? filled : done * 10 / total
        guard step != last || done == total else { return }
        last = step
        let line = label + "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] \(done)/\(total) images"
        FileHandle.standardError.write(Data(((terminal ? "\r" : "") + line + (terminal ? "" : "\n")).utf8))
        drawn = true
    }

    func end() {
        if enabled && terminal && drawn { FileHandle.standardError.write(Data("\n".utf8)) }
        drawn = false
    }
}
