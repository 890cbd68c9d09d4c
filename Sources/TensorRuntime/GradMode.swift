/// Whether operations record themselves for reverse-mode differentiation, per thread.
///
/// Thread-local because the scheduler runs independent stages on different threads at once: one
/// stage sampling without gradients must not switch recording off for another that is training.
public enum GradMode {
    private static let enabled = ThreadLocal<Bool> { true }

    /// True unless the current thread is inside `withoutGradients`.
    @inline(__always)
    public static var isEnabled: Bool { enabled.value }

    /// Runs `body` with recording set to `enabled`, restoring the previous mode afterwards.
    public static func with<T>(enabled: Bool, _ body: () throws -> T) rethrows -> T {
        try self.enabled.with(enabled, body)
    }
}

/// Runs `body` without recording operations for autograd (PyTorch's `torch.no_grad()`).
public func withoutGradients<T>(_ body: () throws -> T) rethrows -> T {
    try GradMode.with(enabled: false, body)
}
