/// Sums and means over axes.
extension Tensor {
    /// Sum over `axes` (all axes when empty is not intended: pass every axis explicitly or use `sum()`).
    public func sum(axes: [Int], keepDims: Bool = false) throws -> Tensor {
        let axes = try normalizedAxes(axes)
        let keptShape = shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
        let out: Tensor
        if rank == 4, isChannelsLastDense {
            // Stored channels last: summed as the [N, H, W, C] tensor it is in memory, which
            // keeps the channels innermost (a bias gradient adds whole rows of channels).
            let view = channelsLastView, logicalAxis = [0, 2, 3, 1]
            let viewAxes = Set((0..<4).filter { axes.contains(logicalAxis[$0]) })
            let kept = Tensor(zeros: view.shape.enumerated().map { viewAxes.contains($0.offset) ? 1 : $0.element })
            Profiler.measure("sum") { reduceSum(view.data, shape: view.shape, axes: viewAxes, into: kept.data) }
            out = Tensor.channelsLastResult(kept, keptShape).contiguousData()
            withExtendedLifetime(view) {}
        } else {
            out = Tensor(zeros: keptShape)
            let src = contiguousData()
            Profiler.measure("sum") { reduceSum(src.data, shape: shape, axes: Set(axes), into: out.data) }
        }
        let result = keepDims ? out : try out.reshaped(shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element))
        let inShape = shape
        return Tensor.record(result, "sum", [self]) { g, _ in
            [try g.reshaped(keptShape).expanded(to: inShape)]
        }
    }

    /// Sum of all elements, as a scalar tensor.
    public func sum() -> Tensor {
        try! sum(axes: Array(0..<rank))
    }

    /// Mean over `axes`.
    public func mean(axes: [Int], keepDims: Bool = false) throws -> Tensor {
        let axes = try normalizedAxes(axes)
        let n = axes.reduce(1) { $0 * shape[$1] }
        return try sum(axes: axes, keepDims: keepDims) * (1 / Float(max(n, 1)))
    }

    /// Mean of all elements, as a scalar tensor.
    public func mean() -> Tensor {
        try! mean(axes: Array(0..<rank))
    }

    /// Broadcasts this tensor to `target` by materialising the copy; recorded (its backward sums back).
    public func expanded(to target: [Int]) throws -> Tensor {
        if shape == target { return self }
        let out = try Tensor.binary(Tensor(zeros: target), self, "expand") { $1 }  // profiled as "expand"
        guard out.shape == target else { throw TensorError.shapeMismatch("expand", shape, target) }
        let src = shape
        return Tensor.record(out, "expand", [self]) { g, _ in [try g.sumTo(src)] }
    }

    func normalizedAxes(_ axes: [Int]) throws -> [Int] {
        try axes.map { a in
            let x = a < 0 ? a + rank : a
            guard x >= 0, x < max(rank, 1) || (rank == 0 && x == 0) else {
                throw TensorError("axis \(a) is out of range for shape \(describe(shape))")
            }
            return x
        }.sorted()
    }
}

extension Tensor {
    /// `(a * b).sumTo(target)`, the gradient of a broadcast operand of a product: without the
    /// product tensor when `a` and `b` have one shape whose trailing axes are summed away (a
    /// modulation's [N, C, H, W] to [N, C, 1, 1], a scalar weight's everything). Each row's
    /// products are summed in the order `sum(axes:)` sums a row, then folded in the same order,
    /// so the result is the same bit for bit. Recorded (for a `createGraph` backward) as the two
    /// ops.
    static func productSum(_ a: Tensor, _ b: Tensor, to target: [Int]) throws -> Tensor {
        if !GradMode.isEnabled, a.shape == b.shape, a.rank == 4, a.isChannelsLastDense, b.isChannelsLastDense,
           let perImage = channelReduction(a.shape, to: target) {
            return channelsLastProductSum(a, b, to: target, perImage: perImage)
        }
        guard !GradMode.isEnabled, a.shape == b.shape, let kept = trailingReduction(a.shape, to: target) else {
            return try (a * b).sumTo(target)
        }
        let inner = a.shape[a.rank - 1]
        let rows = a.count / inner
        let rowsPerOutput = rows / max(kept, 1)
        let out = Tensor(zeros: target)
        let ca = a.contiguousData(), cb = b.contiguousData()
        Profiler.measure("mul+sum") {
            var pa = ca.data, pb = cb.data
            let d = out.data
            for k in 0..<kept {
                for _ in 0..<rowsPerOutput {
                    var acc: Float = 0
                    for j in 0..<inner { acc += pa[j] * pb[j] }
                    d[k] += acc
                    pa += inner
                    pb += inner
                }
            }
        }
        return out
    }

    /// For `sumTo(target)` of an [N, C, H, W] `shape` to one value per image and channel
    /// ([N, C, 1, 1]: true) or per channel ([1, C, 1, 1], [C, 1, 1]: false); nil for other
    /// targets.
    static func channelReduction(_ shape: [Int], to target: [Int]) -> Bool? {
        guard shape.count == 4, target.count <= 4, shape[1] > 1 else { return nil }
        let aligned = [Int](repeating: 1, count: 4 - target.count) + target
        guard aligned[1] == shape[1], aligned[2] == 1, aligned[3] == 1, shape[2] * shape[3] > 1 else { return nil }
        if aligned[0] == shape[0], shape[0] > 1 { return true }
        return aligned[0] == 1 ? false : nil
    }

    /// `productSum` of two [N, C, H, W] tensors stored channels last, to one value per image and
    /// channel (`perImage`) or per channel: each pixel's row of channels multiplied and added in
    /// pixel order, the order `sum(axes:)` adds the rows of the product stored channels last, so
    /// the same bits as the two ops.
    private static func channelsLastProductSum(_ a: Tensor, _ b: Tensor, to target: [Int], perImage: Bool) -> Tensor {
        let (n, c) = (a.shape[0], a.shape[1]), pixels = a.shape[2] * a.shape[3]
        let out = Tensor(zeros: target)
        Profiler.measure("mul+sum") {
            var pa = a.data, pb = b.data
            for image in 0..<n {
                let d = out.data + (perImage ? image * c : 0)
                for _ in 0..<pixels {
                    for k in 0..<c { d[k] += pa[k] * pb[k] }
                    pa += c
                    pb += c
                }
            }
        }
        withExtendedLifetime((a, b)) {}
        return out
    }

    /// For `sumTo(target)` of a tensor of `shape` that sums exactly a run of trailing axes
    /// (including the innermost, longer than 1) and keeps the leading ones whole: the number of
    /// kept elements; nil otherwise.
    static func trailingReduction(_ shape: [Int], to target: [Int]) -> Int? {
        let rank = shape.count
        guard rank >= 1, target.count <= rank, shape[rank - 1] > 1, target != shape else { return nil }
        let aligned = [Int](repeating: 1, count: rank - target.count) + target
        var k = 0
        while k < rank && aligned[k] == shape[k] { k += 1 }
        guard aligned[k...].allSatisfy({ $0 == 1 }) else { return nil }
        return shape[..<k].reduce(1, *)
    }
}

/// Sums a contiguous array of `shape` over `axes` into a zeroed output of the kept shape.
func reduceSum(_ src: UnsafeMutablePointer<Float>, shape: [Int], axes: Set<Int>, into dst: UnsafeMutablePointer<Float>) {
    if shape.isEmpty { dst[0] = src[0]; return }
    if shape.count == 4, axes == [0, 2, 3] {
        // Per channel of [N, C, H, W] (a bias gradient): the rows and the order of the general
        // walk below, so the same sums bit for bit, without its index bookkeeping per row.
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        var p = src
        for _ in 0..<n {
            for k in 0..<c {
                for _ in 0..<h {
                    var acc: Float = 0
                    for j in 0..<w { acc += p[j] }
                    dst[k] += acc
                    p += w
                }
            }
        }
        return
    }
    forEachReductionRow(src, shape: shape, axes: axes, into: dst) { p, d, inner, innerReduced in
        if innerReduced {
            var acc: Float = 0
            for j in 0..<inner { acc += p[j] }
            d[0] += acc
        } else {
            for j in 0..<inner { d[j] += p[j] }
        }
    }
}

/// Walks a contiguous array of `shape` (rank 1 or more) one innermost row at a time and calls
/// `body(row, out, rowLength, rowIsReduced)` with the place in the kept-shape output `dst` that
/// the row folds into: one element when the innermost axis is reduced, else a row as long.
@inline(__always)
func forEachReductionRow(
    _ src: UnsafeMutablePointer<Float>, shape: [Int], axes: Set<Int>, into dst: UnsafeMutablePointer<Float>,
    _ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Int, Bool) -> Void
) {
    let rank = shape.count
    let n = shape.reduce(1, *)
    if n == 0 { return }
    // Output strides over the full index space (0 on reduced axes).
    var outStrides = [Int](repeating: 0, count: rank)
    var s = 1
    for ax in stride(from: rank - 1, through: 0, by: -1) where !axes.contains(ax) {
        outStrides[ax] = s
        s *= shape[ax]
    }
    let inner = shape[rank - 1]
    let innerReduced = axes.contains(rank - 1)
    var index = [Int](repeating: 0, count: rank)
    var p = src
    for _ in 0..<(n / inner) {
        var o = 0
        for ax in 0..<(rank - 1) { o += index[ax] * outStrides[ax] }
        body(p, dst + o, inner, innerReduced)
        p += inner
        var ax = rank - 2
        while ax >= 0 {
            index[ax] += 1
            if index[ax] < shape[ax] { break }
            index[ax] = 0
            ax -= 1
        }
    }
}
