import Foundation
import Testing
@testable import PipelineGraph

@Suite struct ProgressTests {
    /// The progress line's RSS (from /proc/self/statm, in pages) agrees with the kernel's own
    /// kB figure in /proc/self/status.
    @Test func residentMemoryMatchesTheKernelsStatusFile() throws {
        let mib = try #require(Progress.residentMiB())
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
        let kib = try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
        #expect(mib > 0)
        // Other tests allocate and free meanwhile; the two reads are microseconds apart.
        #expect(abs(mib - kib / 1024) <= 64, "statm says \(mib) MiB, status says \(kib / 1024) MiB")
    }

    /// The bar and the ETA follow whichever ends the run first: the last step or the time limit
    /// (the run's clock, resumed seconds included).
    @Test func theEstimateFollowsTheStepsOrTheTimeLimitWhicheverEndsTheRunFirst() {
        typealias E = PipelineGraph.Progress.Estimate
        // No limit: 100 steps in 10 s, 900 to go.
        #expect(Progress.estimate(step: 100, total: 1000, rate: 10, runSeconds: 10, timeLimit: nil)
                == E(fraction: 0.1, secondsLeft: 90, byTime: false))
        // `--steps 1000000 --time-limit 30m` after a minute: the limit ends it.
        #expect(Progress.estimate(step: 650, total: 1_000_000, rate: 650.0 / 60, runSeconds: 60, timeLimit: 1800)
                == E(fraction: 60.0 / 1800, secondsLeft: 1740, byTime: true))
        // A limit that the steps beat.
        #expect(Progress.estimate(step: 900, total: 1000, rate: 10, runSeconds: 90, timeLimit: 3600)
                == E(fraction: 0.9, secondsLeft: 10, byTime: false))
        // Resumed at step 500 after 990 s: this session's rate (100 steps in 10 s), the run's clock.
        #expect(Progress.estimate(step: 600, total: 100_000, rate: 10, runSeconds: 1000, timeLimit: 1200)
                == E(fraction: 1000.0 / 1200, secondsLeft: 200, byTime: true))
        // Past the limit (the step that finds it up): nothing left, the bar full.
        #expect(Progress.estimate(step: 700, total: 100_000, rate: 700.0 / 1801, runSeconds: 1801, timeLimit: 1800)
                == E(fraction: 1, secondsLeft: 0, byTime: true))
        // No step done yet: the limit is the only estimate.
        #expect(Progress.estimate(step: 0, total: 10, rate: 0, runSeconds: 0, timeLimit: 60)
                == E(fraction: 0, secondsLeft: 60, byTime: true))
    }

    @Test func durationsReadAsHoursMinutesAndSeconds() {
        #expect(Progress.duration(42) == "42s")
        #expect(Progress.duration(125) == "2m05s")
        #expect(Progress.duration(3 * 3600 + 7 * 60 + 20) == "3h07m")
    }
}
