import GANFlowTestSupport
import TensorRuntime

/// Comparisons shared by the op tests.
enum OpsCheck {
    /// The largest |a - b| / max(1, |b|) over matching elements; infinite when the counts differ,
    /// or when one side is NaN or infinite and the other is not the same value.
    static func maxRelativeError(_ a: [Float], _ b: [Float]) -> Float {
        largestDifference(a, b, relativeTo: 1)
    }

    /// `maxRelativeError` against a reference computed in Double.
    static func maxRelativeError(_ a: [Float], _ b: [Double]) -> Float {
        maxRelativeError(a, b.map { Float($0) })
    }
}
