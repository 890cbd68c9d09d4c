import Dispatch
import Foundation
import PipelineGraph
import Synchronization
import TensorRuntime

/// Runs file writes one after another on a background queue, with at most `limit` waiting.
///
/// `submit` blocks while `limit` writes are pending, so a slow disk slows the training loop
/// instead of letting queued images grow memory. The first failure is thrown by the next
/// `submit` or by `drain`.
final class BackgroundWriter: Sendable {
    private let queue: DispatchQueue
    private let slots = DispatchSemaphore(value: 0)
    private let failure = Locked<(any Error)?>(nil)
    private let written = Atomic<Int>(0)
    private let accepted = Atomic<Int>(0)
    private let peak = Atomic<Int>(0)
    private let blocked = Atomic<Int>(0)
    /// The most writes ever queued or running at once; never more than the limit.
    var highWater: Int { peak.load(ordering: .relaxed) }
    /// Writes queued or running now.
    var pending: Int { accepted.load(ordering: .relaxed) }
    /// Callers of `submit` waiting for a free slot now (the training loop, held back by the disk).
    var waitingSubmitters: Int { blocked.load(ordering: .relaxed) }

    init(label: String, limit: Int) {
        precondition(limit > 0)
        queue = DispatchQueue(label: label, qos: .utility)
        // Signalled up to the limit rather than created with it: a semaphore must not be released
        // below its initial value.
        for _ in 0..<limit { slots.signal() }
    }

    /// Queues `write`, waiting for a free slot first.
    func submit(_ write: @escaping @Sendable () throws -> Void) throws {
        try rethrowFailure()
        blocked.add(1, ordering: .relaxed)
        slots.wait()
        blocked.subtract(1, ordering: .relaxed)
        let now = accepted.add(1, ordering: .relaxed).newValue
        var seen = peak.load(ordering: .relaxed)
        while now > seen {
            let (exchanged, current) = peak.compareExchange(expected: seen, desired: now, ordering: .relaxed)
            if exchanged { break }
            seen = current
        }
        queue.async { [self] in
            defer {
                accepted.subtract(1, ordering: .relaxed)
                slots.signal()
            }
            do {
                try write()
                written.add(1, ordering: .relaxed)
            } catch {
                failure.withLock { if $0 == nil { $0 = error } }
            }
        }
    }

    /// Waits for every queued write, then throws the first failure.
    func drain() throws {
        queue.sync {}
        try rethrowFailure()
    }

    /// Writes completed so far.
    var completed: Int { written.load(ordering: .relaxed) }

    private func rethrowFailure() throws {
        if let e = failure.withLock({ $0 }) { throw e }
    }
}

/// Keys and helpers the image sinks share.
enum SinkSupport {
    /// `<outputDirectory>/<folder>`, created if missing.
    static func folder(_ name: String, in outputDirectory: String) throws -> String {
        let path = name.hasPrefix("/") ? name : (outputDirectory as NSString).appendingPathComponent(name)
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw StageProblem(key: "folder", "\(path): cannot create the folder (\(error.localizedDescription))")
        }
        return path
    }

    /// Checks that a sink's input is an image batch PNG can hold.
    static func checkImages(_ type: PortType?, channels: ClosedRange<Int> = 1...4, grid: Bool = false) throws {
        guard let s = type?.shape, s.count == 4, channels.contains(s[1]), !(grid && s[1] == 2) else {
            let wanted = grid ? "1, 3 or 4" : "1 to 4"
            throw StageProblem(key: "input", "expected images [N, C, H, W] with C of \(wanted), found \(type.map { "\($0)" } ?? "nothing")")
        }
    }

    static func stepName(_ step: Int) -> String { String(format: "step-%08d", step) }
}
