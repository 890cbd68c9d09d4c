import Dispatch
import Foundation
import Synchronization
import TensorRuntime

/// Produces batches ahead of the training loop on its own queue, into a bounded queue.
///
/// At most `depth` batches wait to be taken; when they are all waiting the producer blocks, so a
/// slow consumer never grows memory. Taking a position other than the one that comes next (after a
/// restore) stops the producer and starts it again there. What is produced is the same as calling
/// `produce` on the caller's thread, because `produce` is a pure function of the position.
final class Prefetcher: @unchecked Sendable {
    typealias Produce = @Sendable (LoaderPosition) -> Result<DataBatch, any Error>

    /// One run of the producer from a starting position; a fresh one after every restart, so its
    /// semaphores always start (and end) at zero.
    private final class Run: Sendable {
        let items = Locked<[(LoaderPosition, Result<DataBatch, any Error>)]>([])
        let filled = DispatchSemaphore(value: 0)
        let free = DispatchSemaphore(value: 0)
        let stopped = DispatchSemaphore(value: 0)
        let cancelled = Atomic<Bool>(false)
        let expected: Locked<LoaderPosition>

        init(start: LoaderPosition) { expected = Locked(start) }
    }

    let depth: Int
    private let produce: Produce
    private let advance: @Sendable (LoaderPosition) -> LoaderPosition
    private let queue: DispatchQueue
    private var run: Run?
    /// Seconds the consumer spent waiting for a batch, the part of it spent on the first batch
    /// (which nothing can have prepared), and batches taken.
    private(set) var waitSeconds: Double = 0
    private(set) var firstWaitSeconds: Double = 0
    private(set) var taken = 0

    init(label: String, depth: Int, advance: @escaping @Sendable (LoaderPosition) -> LoaderPosition, produce: @escaping Produce) {
        precondition(depth > 0)
        self.depth = depth
        self.advance = advance
        self.produce = produce
        queue = DispatchQueue(label: label, qos: .userInitiated)
    }

    deinit { stop() }

    /// The batch at `position`, waiting for the producer if it is not ready.
    func take(_ position: LoaderPosition) throws -> DataBatch {
        if let run, run.expected.withLock({ $0 }) != position { stop() }
        let current = run ?? start(at: position)
        let began = DispatchTime.now().uptimeNanoseconds
        current.filled.wait()
        let waited = Double(DispatchTime.now().uptimeNanoseconds - began) / 1e9
        if taken == 0 { firstWaitSeconds = waited }
        waitSeconds += waited
        taken += 1
        let (at, result) = current.items.withLock { $0.removeFirst() }
        current.free.signal()
        precondition(at == position, "prefetcher produced \(at) for \(position)")
        current.expected.withLock { $0 = advance(position) }
        do {
            return try result.get()
        } catch {
            // Start afresh on the next request rather than serve what followed a failure.
            stop()
            throw error
        }
    }

    /// Stops the producer and drops what it made.
    func stop() {
        guard let current = run else { return }
        run = nil
        current.cancelled.store(true, ordering: .sequentiallyConsistent)
        current.free.signal()
        current.stopped.wait()
    }

    private func start(at position: LoaderPosition) -> Run {
        let r = Run(start: position)
        for _ in 0..<depth { r.free.signal() }
        let produce = self.produce, advance = self.advance
        queue.async {
            var p = position
            while true {
                r.free.wait()
                if r.cancelled.load(ordering: .sequentiallyConsistent) { break }
                let result = produce(p)
                r.items.withLock { $0.append((p, result)) }
                r.filled.signal()
                if case .failure = result { break }
                p = advance(p)
            }
            r.stopped.signal()
        }
        run = r
        return r
    }
}
