#if canImport(Glibc)
import Glibc
#endif

/// A value of which every thread has its own copy, made by `initial` on the thread's first use
/// and released when the thread exits.
///
/// For state that concurrent stages must not share: the grad mode, the batch-norm communicator,
/// the profiler's stack of measurements, oneDNN's stream. A value that owns a resource (a
/// stream) releases it in its `deinit`. Meant to be stored in a `static let`: the key lives as
/// long as the process.
public final class ThreadLocal<Value>: @unchecked Sendable {
    /// The thread's value, boxed so that it can be changed in place.
    @usableFromInline
    final class Box {
        @usableFromInline var value: Value
        init(_ value: Value) { self.value = value }
    }

    @usableFromInline let key: pthread_key_t
    @usableFromInline let initial: @Sendable () -> Value

    public init(_ initial: @escaping @Sendable () -> Value) {
        var key = pthread_key_t()
        // A thread's box is released when the thread exits (its value's deinit runs then).
        let status = pthread_key_create(&key) { p in
            if let p { Unmanaged<AnyObject>.fromOpaque(p).release() }
        }
        precondition(status == 0, "pthread_key_create failed (\(status)): too many thread-local values")
        self.key = key
        self.initial = initial
    }

    /// The calling thread's box, made on its first use.
    @inlinable
    var box: Box {
        if let p = pthread_getspecific(key) { return Unmanaged<Box>.fromOpaque(p).takeUnretainedValue() }
        return makeBox()
    }

    @usableFromInline
    func makeBox() -> Box {
        let box = Box(initial())
        pthread_setspecific(key, Unmanaged.passRetained(box as AnyObject).toOpaque())
        return box
    }

    /// The calling thread's value.
    @inlinable
    public var value: Value {
        get { box.value }
        set { box.value = newValue }
    }

    /// Runs `body` with the calling thread's value set to `value`, restoring the previous value
    /// afterwards (also when `body` throws).
    @inlinable
    public func with<T>(_ value: Value, _ body: () throws -> T) rethrows -> T {
        let box = self.box
        let previous = box.value
        box.value = value
        defer { box.value = previous }
        return try body()
    }
}
