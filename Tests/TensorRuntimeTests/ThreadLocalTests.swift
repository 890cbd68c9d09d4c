import Foundation
import Synchronization
import Testing
import TensorRuntime

/// Counts the values that were released.
private final class Tracked: Sendable {
    static let released = Atomic<Int>(0)
    let id: Int
    init(_ id: Int) { self.id = id }
    deinit { Tracked.released.add(1, ordering: .relaxed) }
}

@Suite struct ThreadLocalTests {
    // Synchronous on purpose: an async test may resume on another thread after an `await`, and
    // then reads that thread's value.
    @Test func eachThreadHasItsOwnValueStartingFromTheInitialOne() {
        let local = ThreadLocal<Int> { 7 }
        local.value = 1
        let seen = Locked<[Int]>([])
        let finished = DispatchGroup()
        for _ in 0..<2 {
            finished.enter()
            Thread {
                seen.withLock { $0.append(local.value) }
                finished.leave()
            }.start()
        }
        finished.wait()
        #expect(seen.withLock { $0 } == [7, 7], "another thread starts from the initial value")
        #expect(local.value == 1)
    }

    @Test func withRestoresThePreviousValueAlsoWhenTheBodyThrows() {
        struct Failure: Error {}
        let local = ThreadLocal<String?> { nil }
        local.with("outer") {
            #expect(local.value == "outer")
            #expect(throws: Failure.self) {
                try local.with("inner") {
                    #expect(local.value == "inner")
                    throw Failure()
                }
            }
            #expect(local.value == "outer")
        }
        #expect(local.value == nil)
    }

    @Test func aThreadsValueIsReleasedWhenTheThreadExits() async throws {
        let local = ThreadLocal<Tracked> { Tracked(1) }
        let before = Tracked.released.load(ordering: .relaxed)
        let id = await withCheckedContinuation { done in
            Thread { done.resume(returning: local.value.id) }.start()
        }
        #expect(id == 1)
        // The key's destructor runs as the thread exits, just after the block returns.
        let deadline = Date().addingTimeInterval(10)
        while Tracked.released.load(ordering: .relaxed) == before, Date() < deadline {
            try await Task.sleep(nanoseconds: 1_000_000)
        }
        #expect(Tracked.released.load(ordering: .relaxed) == before + 1)
    }
}
