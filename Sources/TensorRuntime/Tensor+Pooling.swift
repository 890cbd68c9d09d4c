import CDNNL

/// Average pooling over the spatial axes of `[N, C, H, W]`.
extension Tensor {
    /// Averages each `kernel x kernel` window, moved by `stride` (default `kernel`) over the input
    /// zero-padded by `padding` on every side.
    ///
    /// As PyTorch's `avg_pool2d` with its defaults (`ceil_mode=False`, `count_include_pad=True`):
    /// every window lies inside the padded input and is divided by `kernel * kernel`, padding
    /// included. The output is `[N, C, (H + 2p - k) / s + 1, (W + 2p - k) / s + 1]`. Pooling is
    /// linear; its backward is the adjoint, whose own backward is pooling again, so gradients of
    /// any order are exact.
    ///
    /// With `countIncludePad: false` (PyTorch's `count_include_pad=False`, TensorFlow's average
    /// pooling, and the FID Inception's) each window is divided by the number of input elements it
    /// covers, so padding does not dilute the border averages.
    ///
    /// With `layout: .channelsLast` the input is [N, H, W, C] (`ActivationLayout`) and oneDNN's
    /// kernel pools it into a channels-last result, without recording.
    public func avgPool2d(
        kernel: Int, stride: Int? = nil, padding: Int = 0, countIncludePad: Bool = true, layout: ActivationLayout = .channelsFirst
    ) throws -> Tensor {
        if layout == .channelsLast {
            try layout.check(self, "avgPool2d")
            let window = try PoolWindow(input: layout.logicalShape(shape), kernel: kernel, stride: stride ?? kernel,
                                        padding: padding, countIncludePad: countIncludePad, op: "avgPool2d")
            return try PoolingPrimitives.forward(
                self, layout: layout, kernel: kernel, stride: window.stride, padding: padding,
                algorithm: countIncludePad ? dnnl_pooling_avg_include_padding : dnnl_pooling_avg_exclude_padding, op: "avgPool2d")
        }
        let window = try PoolWindow(input: shape, kernel: kernel, stride: stride ?? kernel, padding: padding,
                                    countIncludePad: countIncludePad, op: "avgPool2d")
        if window.stride == kernel, padding == 0, shape[2] % kernel == 0, shape[3] % kernel == 0 {
            // Tiling blocks (the usual `avg_pool2d(x, 2)`): the simpler block kernel is ~2x faster.
            return blockSumScaled(self, kernel, 1 / Float(kernel * kernel))
        }
        return avgPoolForward(self, window)
    }
}

/// The geometry of a square pooling window over a `[N, C, H, W]` input.
private struct PoolWindow {
    let input: [Int]
    let kernel: Int, stride: Int, padding: Int
    let countIncludePad: Bool
    let outHeight: Int, outWidth: Int

    init(input: [Int], kernel: Int, stride: Int, padding: Int, countIncludePad: Bool, op: String) throws {
        guard input.count == 4 else {
            throw TensorError("\(op): expected an input of shape [N, C, H, W], got \(describe(input))")
        }
        guard kernel > 0, stride > 0, padding >= 0 else {
            throw TensorError("\(op): kernel \(kernel) and stride \(stride) must be positive and padding \(padding) non-negative")
        }
        guard padding <= kernel / 2 else {
            throw TensorError("\(op): padding \(padding) must be at most half the kernel \(kernel)")
        }
        let h = input[2] + 2 * padding - kernel, w = input[3] + 2 * padding - kernel
        guard h >= 0, w >= 0 else {
            throw TensorError("\(op): kernel \(kernel) with padding \(padding) is larger than the input \(describe(input))")
        }
        self.input = input
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.countIncludePad = countIncludePad
        self.outHeight = h / stride + 1
        self.outWidth = w / stride + 1
    }

    var output: [Int] { [input[0], input[1], outHeight, outWidth] }

    /// The input rows (or columns) covered by output index `o` along an axis of length `size`.
    @inline(__always)
    func span(_ o: Int, _ size: Int) -> Range<Int> {
        let start = o * stride - padding
        return max(start, 0)..<min(start + kernel, size)
    }

    /// What the sum over the window of outputs (oh, ow) is divided by.
    @inline(__always)
    func divisor(_ rows: Range<Int>, _ cols: Range<Int>) -> Float {
        countIncludePad ? Float(kernel * kernel) : Float(rows.count * cols.count)
    }
}

private func avgPoolForward(_ x: Tensor, _ w: PoolWindow) -> Tensor {
    let src = x.contiguousData()
    let out = Tensor(uninitialized: w.output)
    let h = w.input[2], wd = w.input[3]
    let planes = w.input[0] * w.input[1]
    for plane in 0..<planes {
        let p = src.data + plane * h * wd
        let q = out.data + plane * w.outHeight * w.outWidth
        for oh in 0..<w.outHeight {
            let rows = w.span(oh, h)
            for ow in 0..<w.outWidth {
                let cols = w.span(ow, wd)
                var acc: Float = 0
                for r in rows {
                    let row = p + r * wd
                    for col in cols { acc += row[col] }
                }
                q[oh * w.outWidth + ow] = acc * (1 / w.divisor(rows, cols))
            }
        }
    }
    return Tensor.record(out, "avg_pool2d", [x]) { g, _ in [avgPoolAdjoint(g, w)] }
}

/// The adjoint of average pooling: each output gradient spread evenly over its window.
private func avgPoolAdjoint(_ g: Tensor, _ w: PoolWindow) -> Tensor {
    let src = g.contiguousData()
    let out = Tensor(zeros: w.input)
    let h = w.input[2], wd = w.input[3]
    let planes = w.input[0] * w.input[1]
    for plane in 0..<planes {
        let p = src.data + plane * w.outHeight * w.outWidth
        let q = out.data + plane * h * wd
        for oh in 0..<w.outHeight {
            let rows = w.span(oh, h)
            for ow in 0..<w.outWidth {
                let cols = w.span(ow, wd)
                let v = p[oh * w.outWidth + ow] * (1 / w.divisor(rows, cols))
                for r in rows {
                    let row = q + r * wd
                    for col in cols { row[col] += v }
                }
            }
        }
    }
    return Tensor.record(out, "avg_pool2d_backward", [g]) { gg, _ in [avgPoolForward(gg, w)] }
}
