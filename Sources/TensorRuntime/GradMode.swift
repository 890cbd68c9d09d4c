#if canImport(Glibc)
import Glibc
#endif

/// Whether operations record themselves for reverse-mode differentiation, per thread.
///
/// Thread-local because the scheduler runs independent stages on different threads at once: one
/// stage sampling without gradients must not switch recording off for another that is training.
public enum GradMode {
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    /// True unless the current thread is inside `withoutGradients`.
    @inline(__always)
    public static var isEnabled: Bool {
        pthread_getspecific(key) == nil
    }

    static func set(_ enabled: Bool) {
        pthread_setspecific(key, enabled ? nil : UnsafeRawPointer(bitPattern: 1))
    }

    /// Runs `body` with recording set to `enabled`, restoring the previous mode afterwards.
    public static func with<T>(enabled: Bool, _ body: () throws -> T) rethrows -> T {
        let previous = isEnabled
        set(enabled)
        defer { set(previous) }
        return try body()
    }
}

/// Runs `body` without recording operations for autograd (PyTorch's `torch.no_grad()`).
public func withoutGradients<T>(_ body: () throws -> T) rethrows -> T {
    try GradMode.with(enabled: false, body)
}
