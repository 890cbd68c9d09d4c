import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// An opt-in profiler of the runtime's ops: per op name, calls, inclusive and self time, and the
/// arithmetic rate of ops that declare their FLOPs (convolutions, matmuls).
///
/// Off by default; while off, an instrumented op costs one relaxed atomic load. While on, every
/// `measure` reads the monotonic clock twice and updates a table under a lock, which is fine for
/// ops of microseconds and more (that is all that is instrumented).
///
/// Measurements nest: a convolution's reorders are measured inside it, and the backward rule of
/// an op inside `gradients`. *Self* time is an entry's time minus the time of entries measured
/// inside it on the same thread, so self times add up to the measured total without double
/// counting; *total* (inclusive) time is what the op cost its caller.
public enum Profiler {
    private static let enabled = Atomic<Bool>(false)

    /// Whether ops record their time. Setting it does not clear what was recorded.
    public static var isEnabled: Bool {
        @inline(__always) get { enabled.load(ordering: .relaxed) }
        set { enabled.store(newValue, ordering: .relaxed) }
    }

    /// What a measured name is. The runtime measures its ops under `op` (the default); code
    /// above it names its own categories (`Profiler.Category("stage")`), each with its table.
    public struct Category: RawRepresentable, Hashable, Sendable {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(_ name: String) { rawValue = name }

        /// The runtime's own ops.
        public static let op = Category("op")
    }

    /// What was recorded for one op name.
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var category: Category = .op
        public var calls: Int = 0
        /// Inclusive nanoseconds.
        public var totalNanos: UInt64 = 0
        /// Nanoseconds not spent in other measured ops.
        public var selfNanos: UInt64 = 0
        /// FLOPs declared by the calls (0 when the op does not declare them).
        public var flops: Double = 0

        public var totalMilliseconds: Double { Double(totalNanos) / 1e6 }
        public var selfMilliseconds: Double { Double(selfNanos) / 1e6 }
        /// FLOPs per second of inclusive time, in GFLOP/s; nil without FLOPs.
        public var gflopPerSecond: Double? {
            flops > 0 && totalNanos > 0 ? flops / Double(totalNanos) : nil
        }
    }

    private static let table = Locked<[String: Entry]>([:])

    /// Every entry recorded since the last `reset()`, largest self time first.
    public static var entries: [Entry] {
        table.withLock { Array($0.values) }.sorted { ($0.selfNanos, $0.name) > ($1.selfNanos, $1.name) }
    }

    /// Forgets everything recorded.
    public static func reset() {
        table.withLock { $0.removeAll() }
    }

    /// Runs `body`, recording its time under `name` when the profiler is on.
    ///
    /// `name` is only evaluated when the profiler is on.
    @inline(__always)
    public static func measure<T>(
        _ name: @autoclosure () -> String, category: Category = .op, flops: @autoclosure () -> Double = 0,
        _ body: () throws -> T
    ) rethrows -> T {
        guard isEnabled else { return try body() }
        return try measureEnabled(name(), category: category, flops: flops(), body)
    }

    /// Runs `body` with `lane` as the calling thread's lane: the trace shows what the thread
    /// measures meanwhile on that lane's track ("compute", "data", "output", "runner").
    public static func withLane<T>(_ lane: String, _ body: () throws -> T) rethrows -> T {
        guard isEnabled else { return try body() }
        let frames = Frames.current
        let saved = frames.lane
        frames.lane = lane
        defer { frames.lane = saved }
        return try body()
    }

    /// Adds one call of `nanos` nanoseconds (with no nested measurements) to `name`; for events
    /// timed by their own code, such as allocations.
    public static func add(_ name: String, nanos: UInt64, flops: Double = 0) {
        let frames = Frames.current
        frames.addChild(nanos)
        record(name, category: .op, total: nanos, selfNanos: nanos, flops: flops)
        if isTracing { Trace.append(name, category: .op, start: now() &- nanos, duration: nanos, flops: flops, frames: frames) }
    }

    /// The monotonic clock in nanoseconds.
    @inline(__always)
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// A measurement under way, from `begin()` to `end(_:_:)`.
    public struct Measurement {
        fileprivate let frames: Frames
        fileprivate let start: UInt64
    }

    /// Starts a measurement when the profiler is on (nil when it is off); `end` records it.
    ///
    /// For kernels whose loop must stay in the caller's body. `measure` runs its body as a closure
    /// through a function that is not inlined, so a per-element closure the caller received
    /// (`binary(a, b, "add") { $0 + $1 }`) was called once per element there instead of being
    /// inlined: with the profiler on, StyleGAN2's `add` and `mul` took 43 ms a step each, against a
    /// few milliseconds with it off, and the profile blamed them for a fifth of the step.
    @inline(__always)
    public static func begin() -> Measurement? {
        isEnabled ? beginEnabled() : nil
    }

    @inline(never)
    private static func beginEnabled() -> Measurement {
        let frames = Frames.current
        frames.push()
        return Measurement(frames: frames, start: now())
    }

    /// Records the measurement `m` under `name`.
    @inline(never)
    public static func end(_ m: Measurement, _ name: String, category: Category = .op, flops: Double = 0) {
        let elapsed = now() &- m.start
        let children = m.frames.pop()
        m.frames.addChild(elapsed)
        record(name, category: category, total: elapsed, selfNanos: elapsed &- min(children, elapsed), flops: flops)
        if isTracing {
            Trace.append(name, category: category, start: m.start, duration: elapsed, flops: flops, frames: m.frames)
        }
    }

    @inline(never)
    private static func measureEnabled<T>(
        _ name: String, category: Category, flops: Double, _ body: () throws -> T
    ) rethrows -> T {
        let m = beginEnabled()
        defer { end(m, name, category: category, flops: flops) }
        return try body()
    }

    private static func record(_ name: String, category: Category, total: UInt64, selfNanos: UInt64, flops: Double) {
        table.withLock { t in
            var e = t[name] ?? Entry(name: name, category: category)
            e.calls += 1
            e.totalNanos &+= total
            e.selfNanos &+= selfNanos
            e.flops += flops
            t[name] = e
        }
    }

    /// A table of the entries, times divided by `steps` (per step when the recording covered
    /// that many training steps), largest self time first; entries below `minimumShare` of the
    /// total self time are summed into one line.
    public static func report(steps: Int = 1, minimumShare: Double = 0.002) -> String {
        let all = entries.filter { $0.category == .op }
        let per = Double(max(steps, 1))
        let totalSelf = all.reduce(0.0) { $0 + $1.selfMilliseconds } / per
        var lines = [
            pad("op", 56) + lpad("calls", 7) + lpad("self ms", 10) + lpad("self %", 8) + lpad("total ms", 10)
                + lpad("GFLOP/s", 9),
        ]
        var rest = (calls: 0.0, ms: 0.0, count: 0)
        for e in all {
            let selfMs = e.selfMilliseconds / per
            if totalSelf > 0, selfMs / totalSelf < minimumShare {
                rest.calls += Double(e.calls) / per
                rest.ms += selfMs
                rest.count += 1
                continue
            }
            lines.append(
                pad(String(e.name.prefix(55)), 56) + lpad(fixed(Double(e.calls) / per, 1), 7) + lpad(fixed(selfMs, 2), 10)
                    + lpad(fixed(100 * selfMs / max(totalSelf, 1e-9), 1), 8) + lpad(fixed(e.totalMilliseconds / per, 2), 10)
                    + lpad(e.gflopPerSecond.map { fixed($0, 1) } ?? "", 9))
        }
        if rest.count > 0 {
            lines.append(
                pad("(\(rest.count) smaller entries)", 56) + lpad(fixed(rest.calls, 1), 7) + lpad(fixed(rest.ms, 2), 10)
                    + lpad(fixed(100 * rest.ms / max(totalSelf, 1e-9), 1), 8))
        }
        lines.append(pad("sum of self times", 56) + lpad("", 7) + lpad(fixed(totalSelf, 2), 10))
        return lines.joined(separator: "\n")
    }

    /// A table of the entries of `category`, headed `heading`: calls, inclusive time and the time
    /// outside the runtime's ops (the entry's own code and waiting), per step when the recording
    /// covered `steps` steps, and each entry's share of `stepNanos` (the measured steps' total),
    /// largest first.
    public static func report(_ category: Category, heading: String, steps: Int, stepNanos: UInt64) -> String {
        let selected = entries.filter { $0.category == category }.sorted { ($0.totalNanos, $0.name) > ($1.totalNanos, $1.name) }
        let per = Double(max(steps, 1))
        let step = Double(stepNanos) / 1e6 / per
        var lines = [pad(heading, 40) + lpad("calls", 7) + lpad("total ms", 10) + lpad("% of step", 10) + lpad("outside ops ms", 16)]
        for e in selected {
            let ms = e.totalMilliseconds / per
            lines.append(pad(String(e.name.prefix(39)), 40) + lpad(fixed(Double(e.calls) / per, 1), 7) + lpad(fixed(ms, 2), 10)
                + lpad(step > 0 ? fixed(100 * ms / step, 1) : "", 10) + lpad(fixed(e.selfMilliseconds / per, 2), 16))
        }
        lines.append(pad("step (wall)", 40) + lpad("", 7) + lpad(fixed(step, 2), 10))
        return lines.joined(separator: "\n")
    }

    private static func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
    private static func lpad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
    private static func fixed(_ x: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let r = (x * scale).rounded() / scale
        var text = String(r)
        if let dot = text.firstIndex(of: ".") {
            let fraction = text.distance(from: dot, to: text.endIndex) - 1
            if digits == 0 { text = String(text[..<dot]) } else if fraction < digits {
                text += String(repeating: "0", count: digits - fraction)
            }
        }
        return text
    }
}

/// Per-thread stack of child-time accumulators, for self times, with the thread's lane and id for
/// the trace.
final class Frames {
    private var stack: [UInt64] = []
    var lane: String?
    /// Threads numbered 1, 2, ... in the order they first measured something.
    let thread = Frames.threadCount.add(1, ordering: .relaxed).newValue
    private static let threadCount = Atomic<Int>(0)

    func push() { stack.append(0) }
    func pop() -> UInt64 { stack.popLast() ?? 0 }
    func addChild(_ nanos: UInt64) {
        if !stack.isEmpty { stack[stack.count - 1] &+= nanos }
    }

    private static let perThread = ThreadLocal<Frames> { Frames() }

    static var current: Frames { perThread.value }
}
