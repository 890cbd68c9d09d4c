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

    static func defaultThreads() -> Int {
        for name in ["GANFLOW_THREADS", "OMP_NUM_THREADS"] {
            if let raw = getenv(name), let n = Int(String(cString: raw).filter { !$0.isWhitespace }), n >= 1 {
                return n
            }
        }
        return max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }
}
