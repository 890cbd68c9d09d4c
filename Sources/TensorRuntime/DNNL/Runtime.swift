import CDNNL
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Process-wide settings of the tensor runtime.
public enum Runtime {
    private static let threadCount = Atomic<Int>(defaultThreads())

    /// Threads oneDNN's OpenMP regions use.
    ///
    /// Defaults to `GANFLOW_THREADS`, else `OMP_NUM_THREADS`, else the number of active cores.
    public static var threads: Int { threadCount.load(ordering: .relaxed) }

    /// Sets the thread count for oneDNN kernels.
    ///
    /// `omp_set_num_threads` only changes the calling thread's OpenMP setting, and kernels run on
    /// whatever thread the scheduler picked, so the count is applied once per thread, just
    /// before that thread's first kernel after a change (`applyToCurrentThread`).
    public static func configure(threads: Int) {
        precondition(threads >= 1, "Runtime.configure(threads:) needs at least one thread")
        threadCount.store(threads, ordering: .relaxed)
    }

    /// Brings this thread's OpenMP thread count in line with `threads`.
    @inline(__always)
    static func applyToCurrentThread() {
        let wanted = threads
        if omp_get_max_threads() != Int32(wanted) {
            omp_set_num_threads(Int32(wanted))
        }
    }

    /// Work below this many FLOPs runs on one thread: on a busy machine an OpenMP parallel
    /// region can wait milliseconds for its second thread to be scheduled, far longer than the
    /// work itself (a 64 x 4096 x 1 matmul took 10 ms with two threads under load).
    static let singleThreadFLOPs: Double = 8e6
    /// Reorders of fewer bytes than this run on one thread, for the same reason.
    static let singleThreadReorderBytes = 256 << 10

    /// Runs `body` with this thread's OpenMP thread count set to `n`, then restores it.
    @inline(__always)
    static func withOpenMPThreads<T>(_ n: Int, _ body: () throws -> T) rethrows -> T {
        let previous = omp_get_max_threads()
        if previous == Int32(n) { return try body() }
        omp_set_num_threads(Int32(n))
        defer { omp_set_num_threads(previous) }
        return try body()
    }

    /// Keeps glibc from moving large blocks onto the heap as a run goes on.
    ///
    /// glibc serves blocks above its mmap threshold with their own mappings, returned to the
    /// system when freed, but each time such a block is freed it raises the threshold to that
    /// block's size (up to 32 MiB); blocks of that size then come from the heap, which fragments
    /// and does not shrink. A long run's resident memory crept up about 10 MiB at each metric pass
    /// (448, 461, 469, 472 MiB over four passes of `dcgan-fashion.json`); with the threshold set
    /// once, which turns the adjustment off, it stayed flat (4 MiB: 419, 419, 418, 417 MiB; 256 KiB
    /// also held it flat but cost about 500 page faults a step of the MLP benchmark in fresh
    /// mappings, against about 200 at 4 MiB). Call once at start-up.
    public static func fixAllocatorThreshold() {
        _ = mallopt(M_MMAP_THRESHOLD, 4 << 20)
    }

    /// Hands the free pages inside glibc's heaps back to the system (`malloc_trim(0)`).
    ///
    /// Blocks under the mmap threshold come from per-thread arenas, and a pass that allocates
    /// more than usual (a metric pass over thousands of samples) grows whichever arenas its
    /// threads use; the freed pages stay resident. Which threads (so which arenas) a pass runs on
    /// varies, so over a long run every arena grows to a pass's high-water mark: the 10,000-step
    /// soak of `dcgan-fashion.json` rose from 432 MiB at step 500 to 457 MiB at the end (+5.7%),
    /// all of it in the arenas; with this call it stayed within +1.1% (418 to 423 MiB at most).
    /// The runner calls this after each step that ran sinks or metrics or wrote a checkpoint.
    ///
    /// The storage pool keeps up to an eighth of the physical memory idle, so that a long
    /// inference (`ganflow score`) reuses its activation buffers; here it first frees its idle
    /// buffers beyond `poolIdleBytesAfterRelease`, largest first, so that a training run keeps
    /// no more idle than a training step's own buffers.
    public static func releaseFreeMemory() {
        Profiler.measure("release free memory") {
            StoragePool.shared.trim(toIdleBytes: poolIdleBytesAfterRelease)
            _ = malloc_trim(0)
        }
    }

    /// What `releaseFreeMemory` leaves idle in the storage pool.
    static let poolIdleBytesAfterRelease = 512 << 20

    static func defaultThreads() -> Int {
        for name in ["GANFLOW_THREADS", "OMP_NUM_THREADS"] {
            if let raw = getenv(name), let n = Int(String(cString: raw).filter { !$0.isWhitespace }), n >= 1 {
                return n
            }
        }
        return max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }
}
