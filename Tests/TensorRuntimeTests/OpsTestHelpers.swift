import TensorRuntime

/// Comparisons shared by the op tests.
enum OpsCheck {
    /// The largest |a - b| / max(1, |b|) over matching elements; infinite when the counts differ,
    /// or when one side is NaN or infinite and the other is not the same value.
    static func maxRelativeError(_ a: [Float], _ b: [Float]) -> Float {
        guard a.count == b.count else { return .infinity }
        var worst: Float = 0
        for (x, y) in zip(a, b) {
            if x.isNaN || y.isNaN {
                if !(x.isNaN && y.isNaN) { return .infinity }
                continue
            }
            if x.isInfinite || y.isInfinite {
                if x != y { return .infinity }
                continue
            }
            worst = max(worst, abs(x - y) / max(1, abs(y)))
        }
        return worst
    }

    /// `maxRelativeError` against a reference computed in Double.
    static func maxRelativeError(_ a: [Float], _ b: [Double]) -> Float {
        maxRelativeError(a, b.map { Float($0) })
    }
}
