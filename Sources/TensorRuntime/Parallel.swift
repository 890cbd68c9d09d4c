import Dispatch

/// A value (a pointer, usually) handed to `concurrentPerform`'s workers, which only read through
/// it or write disjoint parts.
public struct UnsafeSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}

extension Runtime {
    /// Runs `body` over `0..<count` split into one contiguous range per kernel thread (`threads`),
    /// on Dispatch's workers; on one thread when there is one thread, one item, or less than
    /// `singleThreadFLOPs` of `work` (the same threshold as oneDNN's kernels, for the same
    /// reason). The ranges are disjoint, so a body that writes only its own items gives the same
    /// result for any split.
    @inline(__always)
    public static func parallelFor(_ count: Int, work: Double, _ body: (Range<Int>) -> Void) {
        let tasks = min(threads, count)
        guard tasks > 1, work >= singleThreadFLOPs else {
            if count > 0 { body(0..<count) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let shared = UnsafeSendable(body)
            DispatchQueue.concurrentPerform(iterations: tasks) { t in
                shared.value((t * count / tasks)..<((t + 1) * count / tasks))
            }
        }
    }

    /// `parallelFor` for a memory-bound elementwise pass over `count` elements: split when the
    /// pass is large enough (a megabyte) that a second thread pays for waking it.
    @inline(__always)
    public static func parallelElementwise(_ count: Int, _ body: (Range<Int>) -> Void) {
        parallelFor(count, work: Double(count) * elementwiseWorkPerElement, body)
    }

    /// What `parallelElementwise` counts per element against `singleThreadFLOPs`: splits from
    /// 256 Ki elements.
    static let elementwiseWorkPerElement: Double = 32
}
