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
        guard rank == 4 else {
            throw TensorError("maxPool2d: expected an input of shape [N, C, H, W], got \(describe(shape))")
        }
        guard kernel > 0 else { throw TensorError("maxPool2d: kernel \(kernel) must be positive") }
        let h = shape[2], w = shape[3]
        guard h >= kernel, w >= kernel else {
            throw TensorError("maxPool2d: kernel \(kernel) is larger than the input \(describe(shape))")
        }
        let oh = h / kernel, ow = w / kernel
        let planes = shape[0] * shape[1]
        let src = contiguousData()
        let out = Tensor(uninitialized: [shape[0], shape[1], oh, ow])
        var index = [Int32](repeating: 0, count: planes * oh * ow)
        index.withUnsafeMutableBufferPointer { idx in
            for plane in 0..<planes {
                let p = src.data + plane * h * w
                let q = out.data + plane * oh * ow
                let base = plane * h * w
                for a in 0..<oh {
                    for b in 0..<ow {
                        var best = -Float.infinity, at = (a * kernel) * w + b * kernel
                        for u in 0..<kernel {
                            let row = (a * kernel + u) * w + b * kernel
                            for t in 0..<kernel where p[row + t] > best || p[row + t].isNaN {
                                best = p[row + t]
                                at = row + t
                                if best.isNaN { break }
                            }
                        }
                        q[a * ow + b] = best
                        idx[plane * oh * ow + a * ow + b] = Int32(base + at)
                    }
                }
            }
        }
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
