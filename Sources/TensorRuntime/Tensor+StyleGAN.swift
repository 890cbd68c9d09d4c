/// StyleGAN2's ops (Karras et al., 2020), with the semantics of NVlabs' stylegan2-ada-pytorch:
/// FIR resampling (`upfirdn2d`), convolution with FIR up/downsampling, and the modulated
/// convolution with weight demodulation.
///
/// The FIR op is linear, so its backward is its adjoint, recorded with the op itself as its own
/// backward; the convolutions are built from `conv2d`, `convTranspose2d`, `matmul` and elementwise
/// ops. Gradients of every order are therefore available (path-length and R1 penalties).

/// A separable low-pass filter for resampling, normalised to sum 1 along each axis
/// (stylegan2-ada-pytorch's `setup_filter` of a 1-D list).
public struct FIRFilter: Hashable, Sendable {
    /// The taps along one axis; the 2-D filter is their outer product.
    public let taps: [Float]

    /// `taps` scaled to sum 1; they must be finite with a positive sum.
    public init(_ taps: [Float]) throws {
        let total = taps.reduce(0, +)
        guard !taps.isEmpty, taps.allSatisfy(\.isFinite), total > 0 else {
            throw TensorError("FIR filter \(taps) must be finite, non-empty and have a positive sum")
        }
        self.taps = taps.map { $0 / total }
    }

    /// [1, 3, 3, 1], StyleGAN2's filter.
    public static let binomial = try! FIRFilter([1, 3, 3, 1])

    /// The 2-D filter [k, k] as stylegan2-ada-pytorch stores it (`resample_filter` buffers).
    public var matrix: Tensor {
        let k = taps.count
        var values = [Float](repeating: 0, count: k * k)
        for i in 0..<k { for j in 0..<k { values[i * k + j] = taps[i] * taps[j] } }
        return try! Tensor(shape: [k, k], scalars: values)
    }
}

extension Tensor {
    /// Upsamples by `up`, pads, filters with `filter` and downsamples by `down`, over height and
    /// width of [N, C, H, W] (stylegan2-ada-pytorch's `upfirdn2d` with a separable filter):
    ///
    /// 1. insert `up - 1` zeros after every pixel along each axis (H to H up);
    /// 2. pad `padding.before` zeros at the start and `padding.after` at the end of each axis
    ///    (negative values crop);
    /// 3. convolve with the filter (flipped, a true convolution), scaled by `gain` overall;
    /// 4. keep every `down`-th pixel.
    ///
    /// The output side is `(H up + before + after - k) / down + 1`.
    public func upfirdn2d(
        _ filter: FIRFilter, up: Int = 1, down: Int = 1, padding: (before: Int, after: Int), gain: Float = 1
    ) throws -> Tensor {
        guard rank == 4 else { throw TensorError("upfirdn2d: expected an input of shape [N, C, H, W], got \(describe(shape))") }
        guard up >= 1, down >= 1 else { throw TensorError("upfirdn2d: up (\(up)) and down (\(down)) must be positive") }
        let axisGain = gain.squareRoot()
        let rows = FIRAxis(length: shape[2], taps: filter.taps, up: up, down: down, padding: padding, gain: axisGain)
        let cols = FIRAxis(length: shape[3], taps: filter.taps, up: up, down: down, padding: padding, gain: axisGain)
        guard rows.outputLength >= 1, cols.outputLength >= 1 else {
            throw TensorError("upfirdn2d: input \(describe(shape)) with up \(up), down \(down), padding (\(padding.before), \(padding.after)) and \(filter.taps.count) taps gives an empty output")
        }
        return firApply(self, FIRMap(batch: shape[0] * shape[1], rows: rows, cols: cols))
    }

    /// Upsampling by 2 with `filter` (`upsample2d`): [N, C, H, W] to [N, C, 2H, 2W], gain 4 so
    /// that a constant image stays constant.
    public func upsample2d(_ filter: FIRFilter = .binomial) throws -> Tensor {
        let k = filter.taps.count
        return try upfirdn2d(filter, up: 2, padding: ((k + 1) / 2, (k - 2) / 2), gain: 4)
    }

    /// Downsampling by 2 with `filter` (`downsample2d`): [N, C, H, W] to [N, C, H/2, W/2].
    public func downsample2d(_ filter: FIRFilter = .binomial) throws -> Tensor {
        let k = filter.taps.count
        return try upfirdn2d(filter, down: 2, padding: ((k - 1) / 2, (k - 2) / 2))
    }
}

/// A 2-D convolution of `x` [N, I, H, W] with `weight` [O, I, k, k] and FIR up- or downsampling
/// by 2 (stylegan2-ada-pytorch's `conv2d_resample` with `flip_weight` as its layers use it:
/// correlation when not upsampling):
///
/// - `up == 1, down == 1`: `conv2d` with `padding`;
/// - `up == 2`: a stride-2 transposed convolution with the weight read as [I, O, k, k], then the
///   filter with gain 4 (the output is [N, O, 2H, 2W] for `padding = k / 2`);
/// - `down == 2`: the filter, then a stride-2 convolution (for a 1x1 kernel: `downsample2d`
///   first, then the convolution).
public func conv2dResample(
    _ x: Tensor, weight: Tensor, up: Int = 1, down: Int = 1, padding: Int, filter: FIRFilter = .binomial
) throws -> Tensor {
    guard weight.rank == 4, weight.shape[2] == weight.shape[3] else {
        throw TensorError("conv2dResample: weight \(describe(weight.shape)) must be [O, I, k, k]")
    }
    let k = weight.shape[2], f = filter.taps.count
    switch (up, down) {
    case (1, 1):
        return try conv2d(x, weight: weight, padding: Size2D(padding, padding))
    case (2, 1):
        let y = try convTranspose2d(x, weight: try weight.transposed(0, 1), stride: 2)
        let before = padding + (f + 1) / 2 - (k - 1), after = padding + (f - 2) / 2 - (k - 2)
        return try y.upfirdn2d(filter, padding: (before, after), gain: 4)
    case (1, 2):
        let before = padding + (f - 1) / 2, after = padding + (f - 2) / 2
        if k == 1 {
            return try conv2d(try x.upfirdn2d(filter, down: 2, padding: (before, after)), weight: weight)
        }
        return try conv2d(try x.upfirdn2d(filter, padding: (before, after)), weight: weight, stride: 2)
    default:
        throw TensorError("conv2dResample: up \(up) and down \(down) are not supported (one of them 2, the other 1, or both 1)")
    }
}

/// StyleGAN2's modulated convolution: `x` [N, I, H, W] is convolved with `weight` [O, I, k, k]
/// scaled per sample by `styles` [N, I] along its input channels and, with `demodulate`, divided
/// per sample and output channel by the norm of that scaled weight (`rsqrt(sum (w s)^2 + 1e-8)`).
///
/// Computed as stylegan2-ada-pytorch does while training (`fused_modconv=False`): the activations
/// are scaled by the styles before one ordinary convolution with the shared weight, and the
/// output by the demodulation coefficients after it. That is the same map as the per-sample
/// weights of a grouped convolution, with one large convolution over the whole batch instead of
/// N small ones, and no loop over the batch. The coefficients are a matrix product:
/// `sum_{i,kh,kw} (w[o,i] s[n,i])^2 = (s^2) (sum_{kh,kw} w^2)^T`.
public func modulatedConv2d(
    _ x: Tensor, weight: Tensor, styles: Tensor, demodulate: Bool = true, up: Int = 1, padding: Int,
    filter: FIRFilter = .binomial
) throws -> Tensor {
    guard x.rank == 4, weight.rank == 4, styles.rank == 2, styles.shape == [x.shape[0], x.shape[1]], weight.shape[1] == x.shape[1] else {
        throw TensorError("modulatedConv2d: input \(describe(x.shape)), weight \(describe(weight.shape)) and styles \(describe(styles.shape)) do not fit; expected [N, I, H, W], [O, I, k, k] and [N, I]")
    }
    let n = x.shape[0], o = weight.shape[0]
    var y = try conv2dResample(try x * styles.reshaped([n, x.shape[1], 1, 1]), weight: weight, up: up, padding: padding, filter: filter)
    if demodulate {
        let energy = try matmul(styles.square(), try weight.square().sum(axes: [2, 3]), transposeB: true)
        y = try y * inverseSquareRoot(energy, plus: 1e-8).reshaped([n, o, 1, 1])
    }
    return y
}

/// `activation(x + bias) * gain` for [N, C, ...] and a per-channel `bias` [C]: StyleGAN2's
/// `bias_act` with a leaky ReLU of slope `slope` (0.2) and gain sqrt(2), or, for `slope` nil, the
/// identity with gain 1 (a linear layer's bias).
///
/// One pass over `x` each way, as stylegan2-ada-pytorch's fused `bias_act`: the backward scales
/// the incoming gradient by `gain` and, where the output is not positive, by `slope`
/// (`leakyGradient`), and the bias gradient is its sum per channel. The mask comes from the
/// output, whose sign is that of `x + bias` for a positive gain; it is constant almost
/// everywhere, so the backward is linear in the gradient and is its own derivative, which gives
/// gradients of every order (R1 and path-length penalties).
public func biasActivation(_ x: Tensor, bias: Tensor?, slope: Float? = 0.2, gain: Float = Float(2).squareRoot()) throws -> Tensor {
    if let bias {
        guard x.rank >= 2, bias.shape == [x.shape[1]] else {
            throw TensorError("biasActivation: bias \(describe(bias.shape)) does not match the channels of \(describe(x.shape))")
        }
    }
    guard gain > 0 else {
        throw TensorError("biasActivation: gain \(gain) must be positive")
    }
    let channels = bias == nil ? 1 : x.shape[1]
    // Stored channels last (bf16 convolutions' results), the result is too: rows of channels.
    let channelsLast = x.isChannelsLastDense
    let src = channelsLast ? x : x.contiguousData(), b = bias?.contiguousData()
    let out = Tensor(storage: Storage(count: x.count), shape: x.shape, strides: channelsLast ? x.strides : nil)
    let ps = src.data, pb = b?.data, pd = out.data
    let negative = (slope ?? 1) * gain
    Profiler.measure("bias_act") {
        if channelsLast, let pb {
            ParallelLoop.chunks(x.count / channels, bytes: x.count * 8) { chunk in
                for row in chunk {
                    let s = ps + row * channels, d = pd + row * channels
                    for k in 0..<channels {
                        let v = s[k] + pb[k]
                        d[k] = v > 0 ? v * gain : v * negative
                    }
                }
            }
            return
        }
        let planeSize = bias == nil ? x.count : x.shape[2...].reduce(1, *)
        let planes = x.count / max(planeSize, 1)
        ParallelLoop.chunks(planes, bytes: x.count * 8) { chunk in
            for plane in chunk {
                let add = pb.map { $0[plane % channels] } ?? 0
                let s = ps + plane * planeSize, d = pd + plane * planeSize
                for i in 0..<planeSize {
                    let v = s[i] + add
                    d[i] = v > 0 ? v * gain : v * negative
                }
            }
        }
    }
    withExtendedLifetime((src, b)) {}
    // The backward keeps the output (for its mask) and shapes, not the input.
    let biasShape = bias?.shape, rank = x.rank
    return Tensor.recordUsingOutput(out, "bias_act", bias.map { [x, $0] } ?? [x]) { g, out, need in
        let dx = try leakyGradient(g, output: out, slope: slope ?? 1, gain: gain)
        guard let biasShape, need.count > 1, need[1] else { return [dx] }
        return [dx, try dx.sum(axes: [0] + Array(2..<rank)).reshaped(biasShape)]
    }
}

/// `g * gain` where `output` is positive and `g * slope * gain` elsewhere: the gradient of a
/// leaky ReLU with gain, given its output (`biasActivation`, and with gain 1 the activations
/// fused into a batch norm or a convolution). Linear in `g` (the mask is held constant), so its
/// own backward is itself.
func leakyGradient(_ g: Tensor, output: Tensor, slope: Float, gain: Float) throws -> Tensor {
    guard g.shape == output.shape else { throw TensorError.shapeMismatch("leaky relu backward", g.shape, output.shape) }
    let negative = slope * gain
    let result = Profiler.measure("leaky relu mask") { () -> Tensor in
        let (gc, yc, strides) = Tensor.storedAlike(g, output)
        let out = Tensor(storage: Storage(count: g.count), shape: g.shape, strides: strides)
        let pg = gc.data, py = yc.data, d = out.data
        func run(bf16 copy: UnsafeMutablePointer<UInt16>?) {
            withExtendedLifetime((gc, yc)) {
                ParallelLoop.chunks(out.count, bytes: out.count * 12) { range in
                    // In blocks, each rounded to bf16 (for the copy) while it is in the cache.
                    var start = range.lowerBound
                    while start < range.upperBound {
                        let end = min(start + 4096, range.upperBound)
                        for i in start..<end { d[i] = py[i] > 0 ? pg[i] * gain : pg[i] * negative }
                        if let copy { bfloat16Round(d + start, into: copy + start, count: end - start) }
                        start = end
                    }
                }
            }
        }
        // Between convolutions that store their results channels last, the next kernel (the
        // convolution's own backward) reads a bf16 copy in that layout: written here in the same pass.
        if out.isChannelsLastDense && convolutionsReadBF16ChannelsLastCopies() {
            try? keepBF16ChannelsLastCopy(of: out, run)
            if out.layoutCopies == nil { run(bf16: nil) }
        } else {
            run(bf16: nil)
        }
        return out
    }
    return Tensor.record(result, "leaky_relu_backward", [g]) { gg, _ in
        [try leakyGradient(gg, output: output, slope: slope, gain: gain)]
    }
}

// MARK: - The FIR kernel

/// One axis of an FIR resampling: for each output index, the input indices it reads and their
/// weights (in compressed rows: entries `starts[o] ..< starts[o + 1]`).
struct FIRAxis: Sendable {
    let inputLength: Int
    let starts: [Int]
    let indices: [Int]
    let weights: [Float]
    var outputLength: Int { starts.count - 1 }

    init(inputLength: Int, starts: [Int], indices: [Int], weights: [Float]) {
        self.inputLength = inputLength
        self.starts = starts
        self.indices = indices
        self.weights = weights
    }

    /// Output `o` reads position `o down + j` of the zero-stuffed, padded signal with tap
    /// `taps[k - 1 - j] * gain`; that position holds input `m / up` when `m = o down + j - before`
    /// is a multiple of `up` inside the stuffed signal, and zero otherwise.
    init(length: Int, taps: [Float], up: Int, down: Int, padding: (before: Int, after: Int), gain: Float) {
        let k = taps.count
        let stuffed = length * up
        let extent = stuffed + padding.before + padding.after - k
        let outLength = extent < 0 ? 0 : extent / down + 1
        var starts = [0], indices: [Int] = [], weights: [Float] = []
        for o in 0..<outLength {
            for j in 0..<k {
                let m = o * down + j - padding.before
                guard m >= 0, m < stuffed, m % up == 0 else { continue }
                indices.append(m / up)
                weights.append(taps[k - 1 - j] * gain)
            }
            starts.append(indices.count)
        }
        self.init(inputLength: length, starts: starts, indices: indices, weights: weights)
    }

    /// The map as a dense [inputLength, outputLength] matrix: column `o` holds output `o`'s weights.
    var matrix: Tensor {
        var values = [Float](repeating: 0, count: inputLength * outputLength)
        for o in 0..<outputLength {
            for e in starts[o]..<starts[o + 1] { values[indices[e] * outputLength + o] += weights[e] }
        }
        return try! Tensor(shape: [inputLength, outputLength], scalars: values)
    }

    /// The transposed map: from this axis's outputs back to its inputs.
    var adjoint: FIRAxis {
        var buckets = [[(Int, Float)]](repeating: [], count: inputLength)
        for o in 0..<outputLength {
            for e in starts[o]..<starts[o + 1] { buckets[indices[e]].append((o, weights[e])) }
        }
        var starts = [0], indices: [Int] = [], weights: [Float] = []
        for b in buckets {
            for (o, w) in b {
                indices.append(o)
                weights.append(w)
            }
            starts.append(indices.count)
        }
        return FIRAxis(inputLength: outputLength, starts: starts, indices: indices, weights: weights)
    }
}

/// A separable FIR map of `batch` planes: `rows` along the height, `cols` along the width.
struct FIRMap: Sendable {
    let batch: Int
    let rows: FIRAxis
    let cols: FIRAxis
    var adjoint: FIRMap { FIRMap(batch: batch, rows: rows.adjoint, cols: cols.adjoint) }
}

/// Applies `m` to `x` [N, C, H, W] (N C = m.batch planes); recorded with the adjoint map as its
/// backward, whose own backward is `m` again.
///
/// The height pass filters each plane into [oh, w] as sums of whole rows scaled by a tap, which
/// vectorise. The width pass is then one matrix product of all those rows, [N C oh, w], with the
/// width map as a dense [w, ow] matrix (mostly zeros, but oneDNN's matmul runs it on every core
/// faster than a gather or a transpose per plane), always in fp32.
///
/// Stored channels last, `x` is filtered as the [N, H, W C] rows it is in memory: the height pass
/// sums whole rows of W C values, the width pass rows of C channels, both vectorising over the
/// channels, and the result is stored channels last too.
private func firApply(_ x: Tensor, _ m: FIRMap) -> Tensor {
    let h = m.rows.inputLength, w = m.cols.inputLength
    let oh = m.rows.outputLength, ow = m.cols.outputLength
    let flops = Double(m.batch) * Double(m.rows.indices.count * w + oh * m.cols.indices.count) * 2
    let name = "upfirdn2d \(h)x\(w) -> \(oh)x\(ow)"
    if x.isChannelsLastDense {
        let (n, c) = (x.shape[0], x.shape[1])
        let out = Profiler.measure(name + " nhwc", flops: flops) { () -> Tensor in
            let rowsDone = Tensor(uninitialized: [n, oh, w * c])
            let result = Tensor(uninitializedChannelsLast: [n, c, oh, ow])
            let src = x.data, mid = rowsDone.data, dst = result.data
            ParallelLoop.chunks(n, bytes: n * (h + oh) * w * c * 4 + n * oh * ow * c * 4) { images in
                for image in images {
                    m.rows.sumRows(of: src + image * h * w * c, width: w * c, into: mid + image * oh * w * c)
                    for row in (image * oh)..<((image + 1) * oh) {
                        m.cols.sumRows(of: mid + row * w * c, width: c, into: dst + row * ow * c)
                    }
                }
            }
            withExtendedLifetime((x, rowsDone)) {}
            return result
        }
        return Tensor.record(out, "upfirdn2d", [x]) { g, _ in [firApply(g, m.adjoint)] }
    }
    let src = x.contiguousData()
    let out = Profiler.measure(name, flops: flops) {
        let rowsDone = Tensor(uninitialized: [m.batch * oh, w])
        ParallelLoop.chunks(m.batch, bytes: m.batch * (h + oh) * w * 4) { planes in
            for plane in planes {
                m.rows.sumRows(of: src.data + plane * h * w, width: w, into: rowsDone.data + plane * oh * w)
            }
        }
        let product = MatMulGeometry(batch: nil, m: m.batch * oh, k: w, n: ow, transposeA: false, transposeB: false, bias: false)
        let filtered = try! ComputePrecision.with(.fp32) { try MatMulPrimitives.run(rowsDone, m.cols.matrix, nil, product) }
        return Tensor(storage: filtered.storage, shape: [x.shape[0], x.shape[1], oh, ow])
    }
    return Tensor.record(out, "upfirdn2d", [x]) { g, _ in [firApply(g, m.adjoint)] }
}

extension FIRAxis {
    /// `dst` [outputLength, width]: row `o` is the sum of the rows of `src` [inputLength, width]
    /// that output `o` reads, each times its weight.
    func sumRows(of src: UnsafePointer<Float>, width: Int, into dst: UnsafeMutablePointer<Float>) {
        starts.withUnsafeBufferPointer { s in
        indices.withUnsafeBufferPointer { ix in
        weights.withUnsafeBufferPointer { wt in
            for o in 0..<(s.count - 1) {
                let row = dst + o * width
                let first = s[o], end = s[o + 1]
                guard first < end else {
                    row.update(repeating: 0, count: width)
                    continue
                }
                let a = src + ix[first] * width, c = wt[first]
                for j in 0..<width { row[j] = c * a[j] }
                for e in (first + 1)..<end {
                    let b = src + ix[e] * width, k = wt[e]
                    for j in 0..<width { row[j] += k * b[j] }
                }
            }
        } } }
    }
}

