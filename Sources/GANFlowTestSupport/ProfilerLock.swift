import TensorRuntime

/// The profiler is one per process: tests that switch it on, off or reset it hold this lock, so
/// tests running at the same time do not cut each other's recordings short.
public enum ProfilerLock {
    private static let mutex = Locked(())

    public static func exclusive<T>(_ body: () throws -> T) rethrows -> T {
        try mutex.withLock { _ in try body() }
    }
}
