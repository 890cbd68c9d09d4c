/// Variance, standard deviation and extremes over axes.
extension Tensor {
    /// Variance over `axes`, with Bessel's correction (divide by n - 1) when `unbiased`, as
    /// `torch.var` does by default. One element with `unbiased` gives NaN, as in PyTorch.
    ///
    /// Built from differentiable primitives, so it has gradients of every order.
    public func variance(axes: [Int], keepDims: Bool = false, unbiased: Bool = true) throws -> Tensor {
        let axes = try normalizedAxes(axes)
        let n = axes.reduce(1) { $0 * shape[$1] }
        let centered = try self - (try mean(axes: axes, keepDims: true))
        let divisor = Float(n - (unbiased ? 1 : 0))
        return try centered.square().sum(axes: axes, keepDims: keepDims) * (1 / divisor)
    }

    /// Variance of all elements, as a scalar tensor.
    public func variance(unbiased: Bool = true) -> Tensor {
        try! variance(axes: Array(0..<rank), unbiased: unbiased)
    }

    /// Standard deviation over `axes`: the square root of `variance(axes:keepDims:unbiased:)`.
    public func standardDeviation(axes: [Int], keepDims: Bool = false, unbiased: Bool = true) throws -> Tensor {
        try variance(axes: axes, keepDims: keepDims, unbiased: unbiased).sqrt()
    }

    /// Standard deviation of all elements, as a scalar tensor.
    public func standardDeviation(unbiased: Bool = true) -> Tensor {
        variance(unbiased: unbiased).sqrt()
    }

    /// Largest element over `axes`, as PyTorch's `amax`. NaN wins, as in PyTorch.
    ///
    /// The gradient is shared equally among the elements that tie for the maximum. Not named
    /// `max`: a method of that name would hide `Swift.max` inside every `Tensor` extension.
    public func amax(axes: [Int], keepDims: Bool = false) throws -> Tensor {
        try extreme(axes: axes, keepDims: keepDims, name: "amax", largest: true)
    }

    /// Smallest element over `axes`, as PyTorch's `amin`. NaN wins, as in PyTorch.
    public func amin(axes: [Int], keepDims: Bool = false) throws -> Tensor {
        try extreme(axes: axes, keepDims: keepDims, name: "amin", largest: false)
    }

    /// Largest element, as a scalar tensor.
    public func amax() throws -> Tensor { try amax(axes: Array(0..<rank)) }

    /// Smallest element, as a scalar tensor.
    public func amin() throws -> Tensor { try amin(axes: Array(0..<rank)) }

    private func extreme(axes: [Int], keepDims: Bool, name: String, largest: Bool) throws -> Tensor {
        let axes = try normalizedAxes(axes)
        guard count > 0 else { throw TensorError("\(name): shape \(describe(shape)) has no elements") }
        let keptShape = shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
        let out = Tensor(repeating: largest ? -.infinity : .infinity, shape: keptShape)
        let src = contiguousData()
        if largest {
            reduceElements(src.data, shape: shape, axes: Set(axes), into: out.data) { d, s in s > d || s != s ? s : d }
        } else {
            reduceElements(src.data, shape: shape, axes: Set(axes), into: out.data) { d, s in s < d || s != s ? s : d }
        }
        // A fresh view: the rule must not capture the returned tensor itself (a cycle through gradFn).
        let values = out.detached()
        let result = keepDims ? out : try out.reshaped(shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element))
        let inShape = shape
        return Tensor.record(result, name, [self]) { g, _ in
            let hits = try Tensor.binary(self, values, name) { $0 == $1 || ($0 != $0 && $1 != $1) ? 1 : 0 }
            let ties = try withoutGradients { try hits.sum(axes: axes, keepDims: true) }
            let share = try Tensor.binary(hits, ties, name) { $0 / $1 }
            return [try g.reshaped(keptShape).expanded(to: inShape) * share]
        }
    }
}

/// Folds a contiguous array of `shape` over `axes` into an output of the kept shape that holds
/// the fold's initial values, with `combine(accumulated, element)`.
@inline(__always)
func reduceElements(
    _ src: UnsafeMutablePointer<Float>, shape: [Int], axes: Set<Int>, into dst: UnsafeMutablePointer<Float>,
    _ combine: (Float, Float) -> Float
) {
    if shape.isEmpty { dst[0] = combine(dst[0], src[0]); return }
    forEachReductionRow(src, shape: shape, axes: axes, into: dst) { p, d, inner, innerReduced in
        if innerReduced {
            var acc = d[0]
            for j in 0..<inner { acc = combine(acc, p[j]) }
            d[0] = acc
        } else {
            for j in 0..<inner { d[j] = combine(d[j], p[j]) }
        }
    }
}
