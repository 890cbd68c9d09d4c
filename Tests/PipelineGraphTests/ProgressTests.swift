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

    @Test func durationsReadAsHoursMinutesAndSeconds() {
        #expect(Progress.duration(42) == "42s")
        #expect(Progress.duration(125) == "2m05s")
        #expect(Progress.duration(3 * 3600 + 7 * 60 + 20) == "3h07m")
    }
}
