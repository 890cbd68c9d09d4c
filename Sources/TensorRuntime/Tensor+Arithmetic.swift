/// Elementwise binary arithmetic with NumPy/PyTorch broadcasting.
///
/// Shapes align from the right; a dimension of 1 (or a missing one) stretches to the other's size.
/// A pair that cannot broadcast is a thrown error naming both shapes.
extension Tensor {
    public static func + (a: Tensor, b: Tensor) throws -> Tensor {
        let out = try binary(a, b, "add") { $0 + $1 }
        return record(out, "add", [a, b]) { g, need in
            [need[0] ? try g.sumTo(a.shape) : nil, need[1] ? try g.sumTo(b.shape) : nil]
        }
    }

    public static func - (a: Tensor, b: Tensor) throws -> Tensor {
        let out = try binary(a, b, "sub") { $0 - $1 }
        return record(out, "sub", [a, b]) { g, need in
            [need[0] ? try g.sumTo(a.shape) : nil, need[1] ? try (-g).sumTo(b.shape) : nil]
        }
    }

    public static func * (a: Tensor, b: Tensor) throws -> Tensor {
        let out = try binary(a, b, "mul") { $0 * $1 }
        return record(out, "mul", [a, b]) { g, need in
            [need[0] ? try productSum(g, b, to: a.shape) : nil, need[1] ? try productSum(g, a, to: b.shape) : nil]
        }
    }

    public static func / (a: Tensor, b: Tensor) throws -> Tensor {
        let out = try binary(a, b, "div") { $0 / $1 }
        return record(out, "div", [a, b]) { g, need in
            [
                need[0] ? try (g / b).sumTo(a.shape) : nil,
                need[1] ? try (-(g * a) / (b * b)).sumTo(b.shape) : nil,
            ]
        }
    }

    public static prefix func - (a: Tensor) -> Tensor {
        let out = Profiler.measure("neg") { a.map { -$0 } }
        return record(out, "neg", [a]) { g, _ in [-g] }
    }

    public static func + (a: Tensor, s: Float) -> Tensor {
        let out = Profiler.measure("add_scalar") { a.map { $0 + s } }
        return record(out, "add_scalar", [a]) { g, _ in [g] }
    }

    public static func - (a: Tensor, s: Float) -> Tensor { a + (-s) }

    public static func - (s: Float, a: Tensor) -> Tensor { (-a) + s }

    public static func + (s: Float, a: Tensor) -> Tensor { a + s }

    public static func * (a: Tensor, s: Float) -> Tensor {
        let out = Profiler.measure("mul_scalar") { a.map { $0 * s } }
        return record(out, "mul_scalar", [a]) { g, _ in [g * s] }
    }

    public static func * (s: Float, a: Tensor) -> Tensor { a * s }

    public static func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }

    /// The shape two shapes broadcast to, or nil when they cannot.
    public static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            if da == db || db == 1 {
                out[i] = da
            } else if da == 1 {
                out[i] = db
            } else {
                return nil
            }
        }
        return out
    }

    /// Sums a broadcast result back down to `target` (the backward of broadcasting).
    public func sumTo(_ target: [Int]) throws -> Tensor {
        if shape == target { return self }
        guard let b = Tensor.broadcastShape(shape, target), b == shape else {
            throw TensorError.shapeMismatch("sumTo", shape, target)
        }
        let lead = rank - target.count
        var axes = Array(0..<lead)
        for i in 0..<target.count where target[i] == 1 && shape[lead + i] != 1 {
            axes.append(lead + i)
        }
        let summed = try sum(axes: axes, keepDims: true)
        return try summed.reshaped(target)
    }

    /// Applies `f` to every element, without recording.
    /// A tensor stored channels last (`isChannelsLastDense`) gives a result stored the same way.
    @inline(__always)
    public func map(_ f: (Float) -> Float) -> Tensor {
        if isChannelsLastDense {
            let out = Tensor(storage: Storage(count: count), shape: shape, strides: strides)
            let s = data, d = out.data
            for i in 0..<count { d[i] = f(s[i]) }
            return out
        }
        let src = contiguousData()
        let out = Tensor(uninitialized: shape)
        let n = count
        let s = src.data, d = out.data
        for i in 0..<n { d[i] = f(s[i]) }
        return out
    }

    /// Combines two same-shaped tensors elementwise, without recording.
    @inline(__always)
    public static func zipMap(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) throws -> Tensor {
        guard a.shape == b.shape else { throw TensorError.shapeMismatch("zipMap", a.shape, b.shape) }
        let ca = a.contiguousData(), cb = b.contiguousData()
        let out = Tensor(uninitialized: a.shape)
        let pa = ca.data, pb = cb.data, d = out.data
        for i in 0..<a.count { d[i] = f(pa[i], pb[i]) }
        return out
    }

    /// Broadcasting elementwise kernel. Fast paths for equal shapes and a one-element operand;
    /// otherwise walks the output row by row with per-operand strides (0 on broadcast axes).
    /// Measured with `Profiler.begin`/`end`, not `measure`, so that `f` stays inlined when the
    /// profiler is on.
    @inline(__always)
    static func binary(_ a: Tensor, _ b: Tensor, _ op: String, _ f: (Float, Float) -> Float) throws -> Tensor {
        let measurement = Profiler.begin()
        defer { if let measurement { Profiler.end(measurement, op) } }
        return try binaryUnprofiled(a, b, op, f)
    }

    @inline(__always)
    private static func binaryUnprofiled(_ a: Tensor, _ b: Tensor, _ op: String, _ f: (Float, Float) -> Float) throws -> Tensor {
        guard let shape = broadcastShape(a.shape, b.shape) else {
            throw TensorError.shapeMismatch(op, a.shape, b.shape, "cannot broadcast")
        }
        if a.shape == b.shape, a.isChannelsLastDense, b.isChannelsLastDense {
            // Both stored channels last (bf16 convolutions' results): elementwise as they lie.
            let out = Tensor(storage: Storage(count: a.count), shape: shape, strides: a.strides)
            let pa = a.data, pb = b.data, d = out.data
            for i in 0..<a.count { d[i] = f(pa[i], pb[i]) }
            return out
        }
        if shape.count == 4 {
            // An activation stored channels last and a smaller operand broadcast over it (a
            // modulation's [N, C, 1, 1], a bias's [C, 1, 1], noise's [N, 1, H, W]): the same
            // loop over the [N, H, W, C] views of both, whose result is stored channels last.
            if a.shape == shape, a.isChannelsLastDense, b.count < a.count {
                return channelsLastResult(try binaryContiguous(a.channelsLastView, b.broadcastChannelsLastView, op, f), shape)
            }
            if b.shape == shape, b.isChannelsLastDense, a.count < b.count {
                return channelsLastResult(try binaryContiguous(a.broadcastChannelsLastView, b.channelsLastView, op, f), shape)
            }
        }
        return try binaryContiguous(a, b, op, f)
    }

    @inline(__always)
    private static func binaryContiguous(_ a: Tensor, _ b: Tensor, _ op: String, _ f: (Float, Float) -> Float) throws -> Tensor {
        guard let shape = broadcastShape(a.shape, b.shape) else {
            throw TensorError.shapeMismatch(op, a.shape, b.shape, "cannot broadcast")
        }
        let ca = a.contiguousData(), cb = b.contiguousData()
        let out = Tensor(uninitialized: shape)
        let n = out.count
        let pa = ca.data, pb = cb.data, d = out.data
        if a.shape == b.shape {
            for i in 0..<n { d[i] = f(pa[i], pb[i]) }
            return out
        }
        if cb.count == 1 {
            let s = pb[0]
            for i in 0..<n { d[i] = f(pa[i], s) }
            return out
        }
        if ca.count == 1 {
            let s = pa[0]
            for i in 0..<n { d[i] = f(s, pb[i]) }
            return out
        }
        let rank = shape.count
        func broadcastStrides(_ t: Tensor) -> [Int] {
            let st = Tensor.contiguousStrides(t.shape)
            var r = [Int](repeating: 0, count: rank)
            let lead = rank - t.rank
            for i in 0..<t.rank where t.shape[i] != 1 { r[lead + i] = st[i] }
            return r
        }
        let fullA = broadcastStrides(a), fullB = broadcastStrides(b)
        // Coalesce neighbouring axes that both operands walk as one (contiguously, or both
        // broadcast), so the inner run is as long as possible: [N, C, H, W] + [C, 1, 1] runs over
        // rows of H * W with a per-row scalar, rather than rows of W.
        var dims: [Int] = [], sa: [Int] = [], sb: [Int] = []
        for ax in stride(from: rank - 1, through: 0, by: -1) where shape[ax] != 1 {
            if let d = dims.last, fullA[ax] == sa[sa.count - 1] * d, fullB[ax] == sb[sb.count - 1] * d {
                dims[dims.count - 1] = d * shape[ax]
            } else {
                dims.append(shape[ax])
                sa.append(fullA[ax])
                sb.append(fullB[ax])
            }
        }
        dims.reverse()
        sa.reverse()
        sb.reverse()
        let dimCount = dims.count
        if dimCount == 0 {
            d[0] = f(pa[0], pb[0])
            return out
        }
        let inner = dims[dimCount - 1]
        let ia = sa[dimCount - 1], ib = sb[dimCount - 1]
        var index = [Int](repeating: 0, count: dimCount)
        var o = 0
        let rows = n / max(inner, 1)
        for _ in 0..<rows {
            var oa = 0, ob = 0
            for ax in 0..<(dimCount - 1) {
                oa += index[ax] * sa[ax]
                ob += index[ax] * sb[ax]
            }
            let ra = pa + oa, rb = pb + ob, rd = d + o
            if ia == 1 && ib == 1 {
                for j in 0..<inner { rd[j] = f(ra[j], rb[j]) }
            } else if ia == 1 {
                let s = rb[0]
                for j in 0..<inner { rd[j] = f(ra[j], s) }
            } else if ib == 1 {
                let s = ra[0]
                for j in 0..<inner { rd[j] = f(s, rb[j]) }
            } else {
                let x = ra[0], y = rb[0]
                let v = f(x, y)
                for j in 0..<inner { rd[j] = v }
            }
            o += inner
            var ax = dimCount - 2
            while ax >= 0 {
                index[ax] += 1
                if index[ax] < dims[ax] { break }
                index[ax] = 0
                ax -= 1
            }
        }
        return out
    }
}
