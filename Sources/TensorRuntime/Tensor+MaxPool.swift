import CDNNL

/// Max pooling over the spatial axes of `[N, C, H, W]` (VGG's `MaxPool2d(2, 2)`).
extension Tensor {
    /// The largest value of each `kernel x kernel` window, windows tiling the input without
    /// overlap (stride = kernel, no padding, trailing rows and columns that do not fill a window
    /// dropped, as PyTorch's `max_pool2d(x, k)`).
    ///
    /// The first maximum of a window (in row-major order) takes the gradient. Forward and
    /// backward are a gather and a scatter through the same index map, each the other's adjoint,
    /// so gradients of any order are exact.
    public func maxPool2d(kernel: Int) throws -> Tensor {
        try maxPool2d(kernel: kernel, stride: kernel, padding: 0)
    }

    /// The largest value of each `kernel x kernel` window moved by `stride` over the input padded
    /// by `padding` on every side, as PyTorch's `max_pool2d(x, kernel, stride, padding)` with
    /// `ceil_mode=False`: padding never wins (it is -infinity), and the output is
    /// `[N, C, (H + 2p - k) / s + 1, (W + 2p - k) / s + 1]`. Inception pools with kernel 3,
    /// stride 2 and with kernel 3, stride 1, padding 1.
    ///
    /// With `layout: .channelsLast` the input is [N, H, W, C] (`ActivationLayout`) and oneDNN's
    /// kernel pools it into a channels-last result, without recording.
    public func maxPool2d(kernel: Int, stride: Int, padding: Int = 0, layout: ActivationLayout = .channelsFirst) throws -> Tensor {
        if layout == .channelsLast {
            try layout.check(self, "maxPool2d")
            let h = shape[1], w = shape[2]
            guard kernel > 0, stride > 0, padding >= 0, padding <= kernel / 2, h + 2 * padding >= kernel, w + 2 * padding >= kernel else {
                throw TensorError("maxPool2d: kernel \(kernel), stride \(stride), padding \(padding) do not fit the channels-last input \(describe(shape))")
            }
            return try PoolingPrimitives.forward(self, layout: layout, kernel: kernel, stride: stride, padding: padding,
                                                 algorithm: dnnl_pooling_max, op: "maxPool2d")
        }
        guard rank == 4 else {
            throw TensorError("maxPool2d: expected an input of shape [N, C, H, W], got \(describe(shape))")
        }
        guard kernel > 0, stride > 0, padding >= 0 else {
            throw TensorError("maxPool2d: kernel \(kernel) and stride \(stride) must be positive and padding \(padding) non-negative")
        }
        guard padding <= kernel / 2 else {
            throw TensorError("maxPool2d: padding \(padding) must be at most half the kernel \(kernel)")
        }
        let h = shape[2], w = shape[3]
        guard h + 2 * padding >= kernel, w + 2 * padding >= kernel else {
            throw TensorError("maxPool2d: kernel \(kernel) is larger than the input \(describe(shape))")
        }
        let oh = (h + 2 * padding - kernel) / stride + 1, ow = (w + 2 * padding - kernel) / stride + 1
        let planes = shape[0] * shape[1]
        let src = contiguousData()
        let out = Tensor(uninitialized: [shape[0], shape[1], oh, ow])
        // Only a recorded op needs to know where each maximum came from (inference, such as the
        // FID Inception's, skips the index map).
        let recording = GradMode.isEnabled && requiresGrad
        var index = [Int32](repeating: 0, count: recording ? planes * oh * ow : 0)
        index.withUnsafeMutableBufferPointer { idx in
            for plane in 0..<planes {
                let p = src.data + plane * h * w
                let q = out.data + plane * oh * ow
                let base = plane * h * w
                for a in 0..<oh {
                    let top = a * stride - padding
                    let rows = max(top, 0)..<min(top + kernel, h)
                    for b in 0..<ow {
                        let left = b * stride - padding
                        let cols = max(left, 0)..<min(left + kernel, w)
                        var best = -Float.infinity, at = rows.lowerBound * w + cols.lowerBound
                        search: for u in rows {
                            let row = u * w
                            for t in cols where p[row + t] > best || p[row + t].isNaN {
                                best = p[row + t]
                                at = row + t
                                if best.isNaN { break search }
                            }
                        }
                        q[a * ow + b] = best
                        if recording { idx[plane * oh * ow + a * ow + b] = Int32(base + at) }
                    }
                }
            }
        }
        guard recording else { return out }
        let map = PoolIndexMap(indices: index, inputShape: shape, outputShape: out.shape)
        return Tensor.record(out, "max_pool2d", [self]) { g, _ in [map.scatter(g)] }
    }
}

/// Which input element each pooled output came from.
private final class PoolIndexMap: @unchecked Sendable {
    let indices: [Int32]
    let inputShape: [Int]
    let outputShape: [Int]

    init(indices: [Int32], inputShape: [Int], outputShape: [Int]) {
        self.indices = indices
        self.inputShape = inputShape
        self.outputShape = outputShape
    }

    /// Output-shaped values placed at their inputs' positions (zeros elsewhere): the adjoint of `gather`.
    func scatter(_ g: Tensor) -> Tensor {
        let src = g.contiguousData()
        let out = Tensor(zeros: inputShape)
        indices.withUnsafeBufferPointer { idx in
            for i in 0..<idx.count { out.data[Int(idx[i])] += src.data[i] }
        }
        return Tensor.record(out, "max_pool2d_backward", [g]) { gg, _ in [self.gather(gg)] }
    }

    /// Input-shaped values read at the pooled positions: the adjoint of `scatter`.
    func gather(_ x: Tensor) -> Tensor {
        let src = x.contiguousData()
        let out = Tensor(uninitialized: outputShape)
        indices.withUnsafeBufferPointer { idx in
            for i in 0..<idx.count { out.data[i] = src.data[Int(idx[i])] }
        }
        return Tensor.record(out, "max_pool2d_gather", [x]) { g, _ in [self.scatter(g)] }
    }
}
