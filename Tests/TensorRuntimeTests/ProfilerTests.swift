import GANFlowTestSupport
import Testing
import TensorRuntime

/// The profiler is process-wide; these tests only look at entries whose names no other test
/// produces, and hold `ProfilerLock` while they switch it on and off.
@Suite(.serialized) struct ProfilerTests {
    @Test func recordsNestedMeasurementsWithSelfTimes() throws {
        try ProfilerLock.exclusive { try nested() }
    }

    func nested() throws {
        Profiler.isEnabled = true
        defer { Profiler.isEnabled = false }
        for _ in 0..<3 {
            Profiler.measure("profiler-test outer") {
                Profiler.measure("profiler-test inner", flops: 1000) {
                    var x: Float = 0
                    for i in 0..<10_000 { x += Float(i) }
                    #expect(x > 0)
                }
            }
        }
        let entries = Profiler.entries
        let outer = try #require(entries.first { $0.name == "profiler-test outer" })
        let inner = try #require(entries.first { $0.name == "profiler-test inner" })
        #expect(outer.calls == 3)
        #expect(inner.calls == 3)
        #expect(inner.flops == 3000)
        #expect(outer.flops == 0)
        #expect(outer.gflopPerSecond == nil)
        #expect(inner.gflopPerSecond != nil)
        // The inner time is part of the outer's inclusive time but not of its self time.
        #expect(inner.totalNanos <= outer.totalNanos)
        #expect(outer.selfNanos + inner.totalNanos <= outer.totalNanos + 1)
        #expect(inner.selfNanos == inner.totalNanos)
    }

    @Test func beginAndEndNestLikeMeasure() throws {
        try ProfilerLock.exclusive { try beginEnd() }
    }

    func beginEnd() throws {
        Profiler.isEnabled = false
        #expect(Profiler.begin() == nil)
        Profiler.isEnabled = true
        defer { Profiler.isEnabled = false }
        for _ in 0..<2 {
            let outer = try #require(Profiler.begin())
            Profiler.measure("profiler-test begin-end inner") {
                var x: Float = 0
                for i in 0..<10_000 { x += Float(i) }
                #expect(x > 0)
            }
            Profiler.end(outer, "profiler-test begin-end outer", flops: 10)
        }
        let entries = Profiler.entries
        let outer = try #require(entries.first { $0.name == "profiler-test begin-end outer" })
        let inner = try #require(entries.first { $0.name == "profiler-test begin-end inner" })
        #expect(outer.calls == 2)
        #expect(inner.calls == 2)
        #expect(outer.flops == 20)
        #expect(inner.totalNanos <= outer.totalNanos)
        #expect(outer.selfNanos + inner.totalNanos <= outer.totalNanos + 1)
    }

    @Test func recordsNothingWhileDisabled() throws {
        ProfilerLock.exclusive { disabled() }
    }

    func disabled() {
        Profiler.isEnabled = false
        let value = Profiler.measure("profiler-test disabled") { 42 }
        #expect(value == 42)
        #expect(!Profiler.entries.contains { $0.name == "profiler-test disabled" })
    }

    @Test func recordsConvolutionKernelsWithTheirFLOPs() throws {
        try ProfilerLock.exclusive { try convolution() }
    }

    func convolution() throws {
        var rng = PhiloxRandom(seed: 5)
        // A geometry no other test uses, so the entry name is this test's own.
        let x = Tensor(randomNormal: [1, 3, 11, 9], using: &rng)
        let w = Tensor(randomNormal: [5, 3, 3, 3], using: &rng)
        Profiler.isEnabled = true
        let y = try conv2d(x, weight: w, stride: 2, padding: 1)
        Profiler.isEnabled = false
        #expect(y.shape == [1, 5, 6, 5])
        let expectedFlops = 2.0 * Double(5 * 6 * 5) * Double(3 * 3 * 3)
        let entry = try #require(Profiler.entries.first { $0.name == "conv.fwd 1x3x11x9 -> 1x5x6x5 k3 s2" })
        #expect(entry.calls >= 1)
        #expect(entry.flops == expectedFlops * Double(entry.calls))
        let report = Profiler.report()
        #expect(report.contains("sum of self times"))
    }

    /// Tests running beside this one record their own ops into the trace while it is on, so
    /// the checks look at this test's events only (named "trace-test ..."), and the limit is
    /// checked with a trace that keeps none.
    @Test func traceKeepsNestedEventsPerLaneAndWritesChromeJSON() throws {
        try ProfilerLock.exclusive {
            Profiler.isEnabled = true
            Profiler.startTrace()
            Profiler.withLane("compute") {
                Profiler.measure("trace-test stage", category: Profiler.Category("stage")) {
                    Profiler.measure("trace-test \"op\"", flops: 2e6) {}
                }
            }
            for _ in 0..<3 { Profiler.measure("trace-test after") {} }
            var log = Profiler.finishTrace()
            Profiler.startTrace(limit: 0)
            Profiler.measure("trace-test over the limit") {}
            let full = Profiler.finishTrace()
            Profiler.isEnabled = false
            log.events = log.events.filter { $0.name.hasPrefix("trace-test") }
            #expect(log.events.count == 5)
            #expect(full.events.isEmpty && full.dropped >= 1, "an event over the limit is counted, not kept")
            let stage = try #require(log.events.first { $0.name == "trace-test stage" })
            let op = try #require(log.events.first { $0.name == "trace-test \"op\"" })
            #expect(stage.lane == "compute" && op.lane == "compute" && stage.thread == op.thread)
            #expect(stage.category.rawValue == "stage" && op.category == .op && op.flops == 2e6)
            #expect(op.start >= stage.start && op.start + op.duration <= stage.start + stage.duration)
            #expect(log.events.filter { $0.name == "trace-test after" }.allSatisfy { $0.lane == nil })
            let json = Profiler.chromeTrace(log, processName: "test")
            #expect(json.contains(#""name":"trace-test \"op\"""#), "names are JSON-escaped")
            #expect(json.contains(#""args":{"name":"compute lane (thread \#(stage.thread))"}"#))
            #expect(json.contains(#""cat":"stage","name":"trace-test stage","ts":0.000"#), "the first event starts the clock")
            #expect(Profiler.chromeTrace(full, processName: "test").contains("trace full: \(full.dropped) later events dropped"))
        }
    }
}
