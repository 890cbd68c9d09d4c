/// Reordering, cutting, joining and padding axes.
///
/// `permuted`, `transposed` and `sliced` are views on the same storage (no copy); kernels that
/// need flat data call `contiguousData()`, which copies a view only when it is strided. `concat`
/// and `padded` write new tensors. Each backward is another layout op, so every order of gradient
/// is available: a slice's gradient is a zero padding, a padding's is a crop (a negative padding),
/// a concatenation's is slices, a permutation's is the inverse permutation.
extension Tensor {
    /// The same values with axes reordered: axis `i` of the result is axis `axes[i]` of this
    /// tensor. A view; no data is copied.
    public func permuted(_ axes: [Int]) throws -> Tensor {
        let normalized = axes.map { $0 < 0 ? $0 + rank : $0 }
        guard normalized.count == rank, Set(normalized) == Set(0..<rank) else {
            throw TensorError("permute: \(describe(axes)) is not a permutation of the axes of shape \(describe(shape))")
        }
        if normalized == Array(0..<rank) { return self }
        let out = Tensor(
            storage: storage, shape: normalized.map { shape[$0] }, strides: normalized.map { strides[$0] }, offset: offset)
        var inverse = [Int](repeating: 0, count: rank)
        for (i, a) in normalized.enumerated() { inverse[a] = i }
        return Tensor.record(out, "permute", [self]) { g, _ in [try g.permuted(inverse)] }
    }

    /// The matrix transpose of a 2-D tensor. A view.
    public func transposed() throws -> Tensor {
        guard rank == 2 else {
            throw TensorError("transpose: expected a 2-D tensor, got shape \(describe(shape))")
        }
        return try permuted([1, 0])
    }

    /// The same values with two axes swapped. A view.
    public func transposed(_ axis0: Int, _ axis1: Int) throws -> Tensor {
        let a = try axisIndex(axis0, "transpose"), b = try axisIndex(axis1, "transpose")
        var order = Array(0..<rank)
        order.swapAt(a, b)
        return try permuted(order)
    }

    /// The elements whose index along `axis` lies in `range`. A view; along axis 0 of a
    /// contiguous tensor it is itself contiguous.
    public func sliced(axis: Int, _ range: Range<Int>) throws -> Tensor {
        let ax = try axisIndex(axis, "slice")
        let size = shape[ax]
        guard range.lowerBound >= 0, range.upperBound <= size else {
            throw TensorError(
                "slice: range \(range.lowerBound)..<\(range.upperBound) is out of bounds for axis \(axis) of shape \(describe(shape))")
        }
        if range.count == size { return self }
        var outShape = shape
        outShape[ax] = range.count
        let out = Tensor(storage: storage, shape: outShape, strides: strides, offset: offset + range.lowerBound * strides[ax])
        var widths = [(before: Int, after: Int)](repeating: (0, 0), count: rank)
        widths[ax] = (range.lowerBound, size - range.upperBound)
        return Tensor.record(out, "slice", [self]) { g, _ in [try g.padded(widths)] }
    }

    /// The tensors joined along `axis`; every other dimension must agree.
    public static func concat(_ tensors: [Tensor], axis: Int = 0) throws -> Tensor {
        guard let first = tensors.first else { throw TensorError("concat: no tensors to join") }
        let ax = try first.axisIndex(axis, "concat")
        for t in tensors.dropFirst() {
            var a = first.shape, b = t.shape
            if a.count == b.count {
                a[ax] = 0
                b[ax] = 0
            }
            guard a == b else {
                throw TensorError.shapeMismatch("concat", first.shape, t.shape, "except along axis \(axis)")
            }
        }
        if tensors.count == 1 { return first }
        var outShape = first.shape
        outShape[ax] = tensors.reduce(0) { $0 + $1.shape[ax] }
        let out = Tensor(uninitialized: outShape)
        var start = [Int](repeating: 0, count: first.rank)
        var ranges: [Range<Int>] = []
        for t in tensors {
            let c = t.contiguousData()
            copyBlock(
                from: c.data, shape: t.shape, start: [Int](repeating: 0, count: t.rank),
                into: out.data, shape: outShape, start: start, extent: t.shape)
            ranges.append(start[ax]..<(start[ax] + t.shape[ax]))
            start[ax] += t.shape[ax]
        }
        return record(out, "concat", tensors) { g, need in
            try zip(need, ranges).map { needed, range in needed ? try g.sliced(axis: ax, range) : nil }
        }
    }

    /// Pads the trailing `widths.count` axes with zeros: `widths[i]` elements before and after
    /// along the i-th of those axes. A negative width crops instead, so `[N, C, 28, 28]` padded by
    /// `[(2, 2), (2, 2)]` is `[N, C, 32, 32]`, and padded by `[(-2, -2), (-2, -2)]` is `[N, C, 24, 24]`.
    public func padded(_ widths: [(before: Int, after: Int)]) throws -> Tensor {
        guard widths.count <= rank else {
            throw TensorError("pad: \(widths.count) axes of padding for shape \(describe(shape))")
        }
        let all = [(before: Int, after: Int)](repeating: (0, 0), count: rank - widths.count) + widths
        var outShape = shape
        for (i, w) in all.enumerated() {
            outShape[i] = shape[i] + w.before + w.after
            guard outShape[i] >= 0 else {
                throw TensorError(
                    "pad: padding (\(w.before), \(w.after)) leaves a negative size on axis \(i) of shape \(describe(shape))")
            }
        }
        if all.allSatisfy({ $0.before == 0 && $0.after == 0 }) { return self }
        let out = Tensor(zeros: outShape)
        // The part of the input that survives cropping, and where it lands in the output.
        var srcStart = [Int](repeating: 0, count: rank), dstStart = srcStart, extent = srcStart
        for (i, w) in all.enumerated() {
            srcStart[i] = Swift.max(0, -w.before)
            dstStart[i] = Swift.max(0, w.before)
            extent[i] = Swift.max(0, shape[i] - srcStart[i] - Swift.max(0, -w.after))
        }
        if !extent.contains(0) {
            let c = contiguousData()
            copyBlock(from: c.data, shape: shape, start: srcStart, into: out.data, shape: outShape, start: dstStart, extent: extent)
        }
        let inverse = widths.map { (before: -$0.before, after: -$0.after) }
        return Tensor.record(out, "pad", [self]) { g, _ in [try g.padded(inverse)] }
    }

    /// Pads (or, for a negative `width`, crops) the last two axes by `width` on every side.
    public func padded(spatial width: Int) throws -> Tensor {
        try padded([(width, width), (width, width)])
    }

    /// Merges axes `startAxis...endAxis` into one, as `torch.flatten` does.
    public func flattened(startAxis: Int = 0, endAxis: Int = -1) throws -> Tensor {
        if rank == 0 { return try reshaped([1]) }
        let a = try axisIndex(startAxis, "flatten"), b = try axisIndex(endAxis, "flatten")
        guard a <= b else {
            throw TensorError("flatten: start axis \(startAxis) comes after end axis \(endAxis) in shape \(describe(shape))")
        }
        let merged = shape[a...b].reduce(1, *)
        return try reshaped(Array(shape[..<a]) + [merged] + Array(shape[(b + 1)...]))
    }

    /// `axis` counted from the front, or from the back when negative; a thrown error when out of range.
    func axisIndex(_ axis: Int, _ op: String) throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0, a < rank else {
            throw TensorError("\(op): axis \(axis) is out of range for shape \(describe(shape))")
        }
        return a
    }
}

/// Copies the block of `extent` elements at `srcStart` in a contiguous array of `srcShape` to
/// `dstStart` in a contiguous array of `dstShape`, one innermost run at a time.
func copyBlock(
    from src: UnsafeMutablePointer<Float>, shape srcShape: [Int], start srcStart: [Int],
    into dst: UnsafeMutablePointer<Float>, shape dstShape: [Int], start dstStart: [Int], extent: [Int]
) {
    let rank = extent.count
    if rank == 0 { dst[0] = src[0]; return }
    if extent.contains(0) { return }
    let srcStrides = Tensor.contiguousStrides(srcShape), dstStrides = Tensor.contiguousStrides(dstShape)
    var srcBase = 0, dstBase = 0
    for a in 0..<rank {
        srcBase += srcStart[a] * srcStrides[a]
        dstBase += dstStart[a] * dstStrides[a]
    }
    // Trailing axes copied whole on both sides merge into one longer run.
    var runAxis = rank - 1
    var run = extent[rank - 1]
    while runAxis > 0, extent[runAxis] == srcShape[runAxis], extent[runAxis] == dstShape[runAxis] {
        runAxis -= 1
        run *= extent[runAxis]
    }
    let outer = extent[..<runAxis].reduce(1, *)
    var index = [Int](repeating: 0, count: runAxis)
    for _ in 0..<outer {
        var s = srcBase, d = dstBase
        for a in 0..<runAxis {
            s += index[a] * srcStrides[a]
            d += index[a] * dstStrides[a]
        }
        (dst + d).update(from: src + s, count: run)
        var a = runAxis - 1
        while a >= 0 {
            index[a] += 1
            if index[a] < extent[a] { break }
            index[a] = 0
            a -= 1
        }
    }
}
