#if canImport(Glibc)
import Glibc
#endif

/// A value that threads share, guarded by a pthread mutex: `withLock` runs its closure with the
/// lock held and the value in hand.
///
/// The project's one lock type. Swift's `Synchronization.Mutex` locks with futexes inside the
/// Swift runtime, which is not built with the thread sanitizer, so TSan never saw its acquires
/// and releases and reported every access inside `withLock` as a race; with pthread locks, which
/// TSan intercepts, the full test suite runs under TSan without suppressions, and TSan still
/// reports any access to the value made outside the lock.
public final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always)
    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
