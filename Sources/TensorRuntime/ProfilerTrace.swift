import Synchronization

/// The profiler's timeline: every measurement as an event with its start, duration, thread and
/// lane, written as a Chrome trace (the JSON that Perfetto and chrome://tracing open).
extension Profiler {
    /// One measured interval.
    public struct TraceEvent: Sendable {
        public var name: String
        public var category: Category
        /// Monotonic nanoseconds.
        public var start: UInt64
        public var duration: UInt64
        /// The OS thread that measured it.
        public var thread: Int
        /// The lane the thread was serving (`withLane`), nil outside any.
        public var lane: String?
        /// FLOPs the op declared (0 when none).
        public var flops: Double = 0
    }

    /// What a trace recorded: its events in the order they ended, and how many were dropped
    /// once `limit` was reached.
    public struct TraceLog: Sendable {
        public var events: [TraceEvent] = []
        public var limit: Int
        public var dropped = 0
    }

    private static let tracingFlag = Atomic<Bool>(false)
    private static let traceLog = Locked(TraceLog(limit: 0))

    /// Whether measurements are also kept as trace events (only while the profiler is on).
    public static var isTracing: Bool {
        @inline(__always) get { tracingFlag.load(ordering: .relaxed) }
    }

    /// Starts a new trace that keeps at most `limit` events (later ones are counted, not kept),
    /// so a long profiled run has a bounded memory cost.
    public static func startTrace(limit: Int = 1_000_000) {
        traceLog.withLock { $0 = TraceLog(limit: limit) }
        tracingFlag.store(true, ordering: .relaxed)
    }

    /// Stops tracing and hands over what was recorded.
    public static func finishTrace() -> TraceLog {
        tracingFlag.store(false, ordering: .relaxed)
        return traceLog.withLock { log in
            let out = log
            log = TraceLog(limit: 0)
            return out
        }
    }

    enum Trace {
        static func append(_ name: String, category: Category, start: UInt64, duration: UInt64, flops: Double,
                           frames: Frames) {
            let event = TraceEvent(name: name, category: category, start: start, duration: duration,
                                   thread: frames.thread, lane: frames.lane, flops: flops)
            traceLog.withLock { log in
                if log.events.count < log.limit { log.events.append(event) } else { log.dropped += 1 }
            }
        }
    }

    /// `log` as Chrome trace JSON ("JSON object format" with complete events).
    ///
    /// Each (lane, thread) pair is one track, named like "compute lane (thread 1234)" and ordered
    /// as `laneOrder` lists the lanes, then other lanes by name, then threads outside any lane;
    /// so the lanes show as rows, with what runs on a lane nested under it. Times are
    /// microseconds from the first event. An op's declared FLOPs go in its arguments, with the rate.
    public static func chromeTrace(_ log: TraceLog, processName: String, laneOrder: [String] = []) -> String {
        let origin = log.events.map(\.start).min() ?? 0
        struct Track: Hashable { var lane: String?; var thread: Int }
        func order(_ lane: String?) -> (Int, String) {
            guard let lane else { return (laneOrder.count + 1, "") }
            return (laneOrder.firstIndex(of: lane) ?? laneOrder.count, lane)
        }
        let tracks = Set(log.events.map { Track(lane: $0.lane, thread: $0.thread) })
            .sorted { a, b in
                let (x, y) = (order(a.lane), order(b.lane))
                return (x.0, x.1, a.thread) < (y.0, y.1, b.thread)
            }
        var ids: [Track: Int] = [:]
        var out = "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n"
        out += "{\"ph\":\"M\",\"pid\":1,\"tid\":0,\"name\":\"process_name\",\"args\":{\"name\":\(JSONValue.quote(processName))}}"
        for (i, track) in tracks.enumerated() {
            ids[track] = i + 1
            let label = track.lane.map { "\($0) lane (thread \(track.thread))" } ?? "thread \(track.thread)"
            out += ",\n{\"ph\":\"M\",\"pid\":1,\"tid\":\(i + 1),\"name\":\"thread_name\",\"args\":{\"name\":\(JSONValue.quote(label))}}"
            out += ",\n{\"ph\":\"M\",\"pid\":1,\"tid\":\(i + 1),\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":\(i + 1)}}"
        }
        // Enclosing events first at equal starts, so viewers nest them correctly.
        let events = log.events.sorted { ($0.start, $1.duration) < ($1.start, $0.duration) }
        for e in events {
            let tid = ids[Track(lane: e.lane, thread: e.thread)]!
            out += ",\n{\"ph\":\"X\",\"pid\":1,\"tid\":\(tid),\"cat\":\"\(e.category.rawValue)\",\"name\":\(JSONValue.quote(e.name))"
            out += ",\"ts\":\(microseconds(e.start &- origin)),\"dur\":\(microseconds(e.duration))"
            if e.flops > 0 {
                let rate = e.duration > 0 ? e.flops / Double(e.duration) : 0
                out += ",\"args\":{\"gflop\":\(e.flops / 1e9),\"gflop_per_s\":\((rate * 10).rounded() / 10)}"
            }
            out += "}"
        }
        if log.dropped > 0 {
            let end = log.events.map { $0.start &+ $0.duration }.max() ?? origin
            out += ",\n{\"ph\":\"i\",\"s\":\"g\",\"pid\":1,\"tid\":0,\"name\":\(JSONValue.quote("trace full: \(log.dropped) later events dropped"))"
            out += ",\"ts\":\(microseconds(end &- origin))}"
        }
        return out + "\n]}\n"
    }

    /// Nanoseconds as microseconds with three decimals (exact, no floating point).
    private static func microseconds(_ nanos: UInt64) -> String {
        let fraction = String(nanos % 1000)
        return "\(nanos / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}
