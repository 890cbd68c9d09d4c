import CDNNL

/// Memory-bound loops (batch norm, activation gradients, optimizer updates) split over the same
/// OpenMP team that runs oneDNN's kernels.
///
/// One thread cannot keep this CPU's memory system busy: on the 2-vCPU Zen 4 a loop reading two
/// 4 MB arrays and writing a third ran at 18 GB/s on one thread and 44 GB/s on two (9.6 against
/// 24 GB/s when the machine was slow), so these loops, single-threaded Swift, cost as much as a
/// third of a bf16 DCGAN step. They run on OpenMP's threads rather than Dispatch's, because
/// oneDNN's threads spin for a while after each kernel and would compete with other threads for
/// the two cores.
///
/// Each thread takes one contiguous chunk, and every element (or every channel's sum) is computed
/// by one thread in the same order as in a serial loop, so results are bit-identical whatever the
/// thread count.
public enum ParallelLoop {
    /// Work below this many bytes touched runs inline: a parallel region costs a few
    /// microseconds, and on a busy machine can wait far longer for its second thread.
    public static let minimumBytes = 256 << 10

    /// Calls `body` on consecutive chunks covering `0..<count`, one chunk per thread of the
    /// OpenMP team (`Runtime.threads`), or on the whole range inline when `bytes` (the memory the
    /// loop touches) is small or there is one thread.
    public static func chunks(_ count: Int, bytes: Int, _ body: (Range<Int>) -> Void) {
        let threads = min(threadsOverride.value ?? Runtime.threads, count)
        guard threads > 1, bytes >= minimumBytes else {
            if count > 0 { body(0..<count) }
            return
        }
        withoutActuallyEscaping(body) { body in
            var job = Job(count: count, body: body)
            withUnsafeMutablePointer(to: &job) { pointer in
                GOMP_parallel({ context in
                    let job = context!.assumingMemoryBound(to: Job.self).pointee
                    let t = Int(omp_get_thread_num()), n = Int(omp_get_num_threads())
                    let start = job.count * t / n, end = job.count * (t + 1) / n
                    if start < end { job.body(start..<end) }
                }, pointer, UInt32(threads), 0)
            }
        }
    }

    private static let threadsOverride = ThreadLocal<Int?> { nil }

    /// Runs `body` with the calling thread's loops split over `threads` threads instead of
    /// `Runtime.threads` (tests compare splits; per thread, so other threads are not affected).
    public static func withThreads<T>(_ threads: Int, _ body: () throws -> T) rethrows -> T {
        try threadsOverride.with(threads, body)
    }

    private struct Job {
        let count: Int
        let body: (Range<Int>) -> Void
    }
}
