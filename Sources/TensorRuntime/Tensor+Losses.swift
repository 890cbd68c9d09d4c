#if canImport(Glibc)
import Glibc
#endif

/// How a loss combines its per-element values.
public enum Reduction: String, Sendable, Codable, CaseIterable {
    /// The per-element losses, in the input's shape.
    case none
    /// Their mean, as a scalar tensor.
    case mean
    /// Their sum, as a scalar tensor.
    case sum
}

/// Losses comparing predictions with targets of the same shape.
///
/// Shapes must match exactly (PyTorch allows broadcasting here with a warning; a `[64, 1]` output
/// against `[64]` labels silently becomes a `[64, 64]` loss, so it is an error instead).
extension Tensor {
    /// Binary cross-entropy of `sigmoid(logits)` against `targets`, in the form that neither
    /// overflows nor loses precision for large |x|: max(x, 0) - x t + log(1 + e^-|x|).
    ///
    /// The backward, sigmoid(x) - t for the logits and -x for the targets, is written with
    /// differentiable ops, so gradient penalties on a discriminator trained with it work.
    public static func binaryCrossEntropyWithLogits(
        _ logits: Tensor, _ targets: Tensor, reduction: Reduction = .mean
    ) throws -> Tensor {
        let losses = try Profiler.measure("bce_with_logits") {
            try zipMap(logits, targets, "binaryCrossEntropyWithLogits") { x, t in
                Swift.max(x, 0) - x * t + log1pf(expf(-Swift.abs(x)))
            }
        }
        let recorded = record(losses, "bce_with_logits", [logits, targets]) { g, need in
            [
                need[0] ? try g * (try logits.sigmoid() - targets) : nil,
                need[1] ? try g * (-logits) : nil,
            ]
        }
        return recorded.reduced(reduction)
    }

    /// Squared error (p - t)^2.
    public static func meanSquaredError(
        _ predictions: Tensor, _ targets: Tensor, reduction: Reduction = .mean
    ) throws -> Tensor {
        try checkSameShape(predictions, targets, "meanSquaredError")
        return try (predictions - targets).square().reduced(reduction)
    }

    /// Absolute error |p - t|; its gradient at p = t is 0, as in PyTorch.
    public static func l1Loss(_ predictions: Tensor, _ targets: Tensor, reduction: Reduction = .mean) throws -> Tensor {
        try checkSameShape(predictions, targets, "l1Loss")
        return try (predictions - targets).abs().reduced(reduction)
    }

    /// Combines per-element values as `reduction` says.
    public func reduced(_ reduction: Reduction) -> Tensor {
        switch reduction {
        case .none: self
        case .mean: mean()
        case .sum: sum()
        }
    }

    private static func checkSameShape(_ a: Tensor, _ b: Tensor, _ op: String) throws {
        guard a.shape == b.shape else { throw TensorError.shapeMismatch(op, a.shape, b.shape) }
    }

    /// `zipMap` that names the op in its error.
    @inline(__always)
    private static func zipMap(_ a: Tensor, _ b: Tensor, _ op: String, _ f: (Float, Float) -> Float) throws -> Tensor {
        try checkSameShape(a, b, op)
        return try zipMap(a, b, f)
    }
}
