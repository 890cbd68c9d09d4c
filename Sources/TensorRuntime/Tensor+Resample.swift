/// Spatial resampling of `[N, C, H, W]`: nearest and bilinear upsampling, area downsampling.
///
/// Every op here is linear in its input, so each backward is the adjoint map, recorded with the
/// forward map as its own backward: gradients of any order are exact.
extension Tensor {
    /// Repeats every pixel `factor` times along height and width (PyTorch's `mode='nearest'` for
    /// an integer scale factor): `[N, C, H, W]` to `[N, C, H * factor, W * factor]`.
    public func upsampleNearest(factor: Int) throws -> Tensor {
        try checkResample("upsampleNearest", factor: factor)
        return nearestScaled(self, factor, 1)
    }

    /// Averages every `factor x factor` block (PyTorch's `mode='area'` for an integer factor, which
    /// is average pooling with kernel and stride `factor`). Height and width must be multiples of
    /// `factor`.
    public func downsampleArea(factor: Int) throws -> Tensor {
        try checkResample("downsampleArea", factor: factor)
        guard shape[2] % factor == 0, shape[3] % factor == 0 else {
            throw TensorError("downsampleArea: height and width of \(describe(shape)) must be multiples of the factor \(factor)")
        }
        return blockSumScaled(self, factor, 1 / Float(factor * factor))
    }

    /// Bilinear interpolation to `height x width`, with PyTorch's `align_corners=False` convention:
    /// output pixel centres map to input coordinates `(o + 0.5) * in / out - 0.5`, clamped below
    /// at 0, and the neighbour beyond the last row or column is the last one itself.
    public func upsampleBilinear(height: Int, width: Int) throws -> Tensor {
        guard rank == 4 else {
            throw TensorError("upsampleBilinear: expected an input of shape [N, C, H, W], got \(describe(shape))")
        }
        guard height > 0, width > 0, shape[2] > 0, shape[3] > 0 else {
            throw TensorError("upsampleBilinear: cannot resize \(describe(shape)) to \(height) x \(width)")
        }
        let map = BilinearMap(
            input: shape, rows: LinearTaps(from: shape[2], to: height), cols: LinearTaps(from: shape[3], to: width))
        return bilinearForward(self, map)
    }

    private func checkResample(_ op: String, factor: Int) throws {
        guard rank == 4 else {
            throw TensorError("\(op): expected an input of shape [N, C, H, W], got \(describe(shape))")
        }
        guard factor > 0 else { throw TensorError("\(op): factor must be positive, got \(factor)") }
    }
}

// MARK: - Nearest and area

/// `scale * x` with every pixel repeated over a `factor x factor` block.
private func nearestScaled(_ x: Tensor, _ f: Int, _ scale: Float) -> Tensor {
    let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    let src = x.contiguousData()
    let out = Tensor(uninitialized: [n, c, h * f, w * f])
    let ow = w * f
    for plane in 0..<(n * c) {
        let p = src.data + plane * h * w
        let q = out.data + plane * h * w * f * f
        for r in 0..<h {
            let row = q + r * f * ow
            for j in 0..<w {
                let v = p[r * w + j] * scale
                for k in 0..<f { row[j * f + k] = v }
            }
            for k in 1..<max(f, 1) { (row + k * ow).update(from: row, count: ow) }
        }
    }
    return Tensor.record(out, "upsample_nearest", [x]) { g, _ in [blockSumScaled(g, f, scale)] }
}

/// `scale` times the sum of every `factor x factor` block; the adjoint of `nearestScaled`.
/// Height and width must be multiples of `f`.
func blockSumScaled(_ x: Tensor, _ f: Int, _ scale: Float) -> Tensor {
    let n = x.shape[0], c = x.shape[1], h = x.shape[2] / f, w = x.shape[3] / f
    let src = x.contiguousData()
    let out = Tensor(zeros: [n, c, h, w])
    let iw = w * f
    for plane in 0..<(n * c) {
        let p = src.data + plane * h * w * f * f
        let q = out.data + plane * h * w
        for r in 0..<(h * f) {
            let row = p + r * iw
            let dst = q + (r / f) * w
            for j in 0..<w {
                var acc: Float = 0
                for k in 0..<f { acc += row[j * f + k] }
                dst[j] += acc
            }
        }
        for i in 0..<(h * w) { q[i] *= scale }
    }
    return Tensor.record(out, "block_sum", [x]) { g, _ in [nearestScaled(g, f, scale)] }
}

// MARK: - Bilinear

/// For each output index along one axis, the two input indices it reads and their weights.
private struct LinearTaps {
    var lower: [Int] = [], upper: [Int] = []
    var lowerWeight: [Float] = [], upperWeight: [Float] = []

    init(from size: Int, to outSize: Int) {
        let scale = Float(size) / Float(outSize)
        for o in 0..<outSize {
            let source = max((Float(o) + 0.5) * scale - 0.5, 0)
            let i0 = min(Int(source), size - 1)
            let frac = min(max(source - Float(i0), 0), 1)
            lower.append(i0)
            upper.append(i0 < size - 1 ? i0 + 1 : i0)
            lowerWeight.append(1 - frac)
            upperWeight.append(frac)
        }
    }

    var outputSize: Int { lower.count }
}

private struct BilinearMap {
    let input: [Int]
    let rows: LinearTaps, cols: LinearTaps
    var output: [Int] { [input[0], input[1], rows.outputSize, cols.outputSize] }
}

private func bilinearForward(_ x: Tensor, _ m: BilinearMap) -> Tensor {
    let src = x.contiguousData()
    let out = Tensor(uninitialized: m.output)
    let h = m.input[2], w = m.input[3]
    let oh = m.rows.outputSize, ow = m.cols.outputSize
    // Local copies of the tap tables: value arrays, indexed without exclusivity checks.
    let r0 = m.rows.lower, r1 = m.rows.upper, a0 = m.rows.lowerWeight, a1 = m.rows.upperWeight
    let c0 = m.cols.lower, c1 = m.cols.upper, b0 = m.cols.lowerWeight, b1 = m.cols.upperWeight
    for plane in 0..<(m.input[0] * m.input[1]) {
        let p = src.data + plane * h * w
        let q = out.data + plane * oh * ow
        for i in 0..<oh {
            let top = p + r0[i] * w, bottom = p + r1[i] * w
            let wt = a0[i], wb = a1[i]
            let dst = q + i * ow
            for j in 0..<ow {
                let l = c0[j], r = c1[j]
                dst[j] = wt * (b0[j] * top[l] + b1[j] * top[r]) + wb * (b0[j] * bottom[l] + b1[j] * bottom[r])
            }
        }
    }
    return Tensor.record(out, "upsample_bilinear", [x]) { g, _ in [bilinearAdjoint(g, m)] }
}

/// The adjoint of bilinear resampling: each output gradient scattered to its four taps.
private func bilinearAdjoint(_ g: Tensor, _ m: BilinearMap) -> Tensor {
    let src = g.contiguousData()
    let out = Tensor(zeros: m.input)
    let h = m.input[2], w = m.input[3]
    let oh = m.rows.outputSize, ow = m.cols.outputSize
    // Local copies of the tap tables: value arrays, indexed without exclusivity checks.
    let r0 = m.rows.lower, r1 = m.rows.upper, a0 = m.rows.lowerWeight, a1 = m.rows.upperWeight
    let c0 = m.cols.lower, c1 = m.cols.upper, b0 = m.cols.lowerWeight, b1 = m.cols.upperWeight
    for plane in 0..<(m.input[0] * m.input[1]) {
        let p = src.data + plane * oh * ow
        let q = out.data + plane * h * w
        for i in 0..<oh {
            let top = q + r0[i] * w, bottom = q + r1[i] * w
            let wt = a0[i], wb = a1[i]
            let row = p + i * ow
            for j in 0..<ow {
                let l = c0[j], r = c1[j], v = row[j]
                top[l] += wt * b0[j] * v
                top[r] += wt * b1[j] * v
                bottom[l] += wb * b0[j] * v
                bottom[r] += wb * b1[j] * v
            }
        }
    }
    return Tensor.record(out, "upsample_bilinear_backward", [g]) { gg, _ in [bilinearForward(gg, m)] }
}
