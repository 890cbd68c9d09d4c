/// The normalisation ops of progressive GANs (Karras et al., ICLR 2018).
extension Tensor {
    /// Pixelwise feature normalisation: `x / sqrt(mean over channels of x^2 + eps)` at every
    /// position, for `[N, C]` (a latent vector) or `[N, C, ...]`.
    ///
    /// The forward and the first-order backward
    /// `dx = r * g - x * r^3 * mean_c(g * x)`, with `r` the per-pixel scale, are fused kernels; when
    /// the backward pass is recorded the same formula is built from differentiable ops.
    public func pixelNorm(eps: Float = 1e-8) throws -> Tensor {
        guard rank >= 2, shape[1] > 0 else {
            throw TensorError("pixelNorm: expected an input of shape [N, C, ...] with C > 0, got \(describe(shape))")
        }
        let geometry = ChannelGeometry(shape)
        let x = contiguousData()
        let out = Tensor(uninitialized: shape)
        let scale = Tensor(uninitialized: [geometry.spatial])
        for i in 0..<geometry.batch {
            pixelScales(x.data + i * geometry.sampleSize, geometry, eps: eps, into: scale.data)
            for k in 0..<geometry.channels {
                let offset = i * geometry.sampleSize + k * geometry.spatial
                let p = x.data + offset, q = out.data + offset, r = scale.data
                for j in 0..<geometry.spatial { q[j] = p[j] * r[j] }
            }
        }
        let input = self
        return Tensor.record(out, "pixel_norm", [self]) { g, _ in
            if GradMode.isEnabled {
                let r = inverseSquareRoot(try (input * input).mean(axes: [1], keepDims: true), plus: eps)
                let projection = try (g * input).mean(axes: [1], keepDims: true)
                return [try g * r - input * (r * r * r) * projection]
            }
            return [pixelNormBackward(g, input, geometry, eps: eps)]
        }
    }

    /// Appends one feature map holding the average standard deviation of the features across each
    /// group of samples: `[N, C, H, W]` to `[N, C + 1, H, W]`.
    ///
    /// As `minibatch_stddev_layer` in the official ProGAN code: the batch is split into
    /// `N / G` groups of size `G = min(groupSize, N)`, sample `n` falling in group `n % (N / G)`
    /// (a reshape to `[G, N / G, C, H, W]`); for each group the biased standard deviation over the
    /// group of every feature, `sqrt(var + 1e-8)`, is averaged over channels and pixels, and that
    /// scalar fills the new channel of the group's samples. `N` must be a multiple of `G`.
    public func minibatchStddev(groupSize: Int) throws -> Tensor {
        guard rank == 4 else {
            throw TensorError("minibatchStddev: expected an input of shape [N, C, H, W], got \(describe(shape))")
        }
        guard groupSize > 0 else {
            throw TensorError("minibatchStddev: groupSize must be positive, got \(groupSize)")
        }
        let group = Swift.min(groupSize, shape[0])
        guard group > 0, shape[0] % group == 0 else {
            throw TensorError("minibatchStddev: batch size \(shape[0]) of \(describe(shape)) is not a multiple of the group size \(group)")
        }
        return try joinChannels([self, groupStddevMap(self, group: group)])
    }
}

/// `[N, C, rest...]` seen as batch x channels x positions.
private struct ChannelGeometry {
    let batch: Int, channels: Int, spatial: Int
    init(_ shape: [Int]) {
        batch = shape[0]
        channels = shape[1]
        spatial = shape.dropFirst(2).reduce(1, *)
    }
    var sampleSize: Int { channels * spatial }
}

/// `1 / sqrt(mean_c x^2 + eps)` for each position of one sample.
private func pixelScales(_ x: UnsafeMutablePointer<Float>, _ geo: ChannelGeometry, eps: Float, into r: UnsafeMutablePointer<Float>) {
    r.update(repeating: 0, count: geo.spatial)
    for k in 0..<geo.channels {
        let p = x + k * geo.spatial
        for j in 0..<geo.spatial { r[j] += p[j] * p[j] }
    }
    let inverseC = 1 / Float(geo.channels)
    for j in 0..<geo.spatial { r[j] = 1 / (r[j] * inverseC + eps).squareRoot() }
}

/// The first-order pixel norm backward as one kernel (not differentiable).
private func pixelNormBackward(_ g: Tensor, _ x: Tensor, _ geo: ChannelGeometry, eps: Float) -> Tensor {
    let gc = g.contiguousData(), xc = x.contiguousData()
    let dx = Tensor(uninitialized: x.shape)
    let r = Tensor(uninitialized: [geo.spatial]), t = Tensor(uninitialized: [geo.spatial])
    let pr = r.data, pt = t.data
    let inverseC = 1 / Float(geo.channels)
    for i in 0..<geo.batch {
        let base = i * geo.sampleSize
        pixelScales(xc.data + base, geo, eps: eps, into: pr)
        pt.update(repeating: 0, count: geo.spatial)
        for k in 0..<geo.channels {
            let p = xc.data + base + k * geo.spatial, q = gc.data + base + k * geo.spatial
            for j in 0..<geo.spatial { pt[j] += p[j] * q[j] }
        }
        // t becomes r^3 * mean_c(g * x), the coefficient of x in dx.
        for j in 0..<geo.spatial { pt[j] *= inverseC * pr[j] * pr[j] * pr[j] }
        for k in 0..<geo.channels {
            let offset = base + k * geo.spatial
            let p = xc.data + offset, q = gc.data + offset, d = dx.data + offset
            for j in 0..<geo.spatial { d[j] = q[j] * pr[j] - p[j] * pt[j] }
        }
    }
    return dx
}

/// The minibatch-stddev feature map `[N, 1, H, W]` for groups of `group` samples.
private func groupStddevMap(_ x: Tensor, group: Int) -> Tensor {
    let n = x.shape[0], spatial = x.shape[2] * x.shape[3]
    let features = x.shape[1] * spatial
    let groups = n / group
    let src = x.contiguousData()
    let out = Tensor(uninitialized: [n, 1, x.shape[2], x.shape[3]])
    let mean = Tensor(uninitialized: [features]), sq = Tensor(uninitialized: [features])
    let pm = mean.data, ps = sq.data
    let inverseG = 1 / Float(group)
    for m in 0..<groups {
        pm.update(repeating: 0, count: features)
        for j in 0..<group {
            let p = src.data + (j * groups + m) * features
            for d in 0..<features { pm[d] += p[d] }
        }
        for d in 0..<features { pm[d] *= inverseG }
        ps.update(repeating: 0, count: features)
        for j in 0..<group {
            let p = src.data + (j * groups + m) * features
            for d in 0..<features {
                let e = p[d] - pm[d]
                ps[d] += e * e
            }
        }
        var total = 0.0
        for d in 0..<features { total += Double((ps[d] * inverseG + 1e-8).squareRoot()) }
        let value = Float(total / Double(features))
        for j in 0..<group {
            (out.data + (j * groups + m) * spatial).update(repeating: value, count: spatial)
        }
    }
    return Tensor.record(out, "minibatch_stddev", [x]) { g, _ in
        // d value_m / d x = (x - mean) / (G * D * std) for the group's samples; built from
        // differentiable ops in the [G, N / G, D] view, where sample n is (n / (N/G), n % (N/G)).
        let xr = try x.reshaped([group, groups, features])
        let centred = try xr - xr.mean(axes: [0], keepDims: true)
        let inverseStd = inverseSquareRoot(try (centred * centred).mean(axes: [0], keepDims: true), plus: 1e-8)
        let perGroup = try g.reshaped([group, groups, spatial]).sum(axes: [0, 2], keepDims: true)
        let dx = try (perGroup * centred * inverseStd) * (1 / Float(group * features))
        return [try dx.reshaped(x.shape)]
    }
}

// MARK: - Channel concatenation

/// Concatenates same-shaped tensors (but for axis 1) along the channel axis; recorded.
///
/// Local to this file; its backward slices channels back out, and a slice's backward pads with
/// zeros by concatenating again, so both are differentiable to any order.
private func joinChannels(_ parts: [Tensor]) throws -> Tensor {
    let first = parts[0]
    for p in parts where p.rank != first.rank || p.shape[0] != first.shape[0] || p.shape.dropFirst(2) != first.shape.dropFirst(2) {
        throw TensorError.shapeMismatch("joinChannels", first.shape, p.shape)
    }
    let spatial = first.shape.dropFirst(2).reduce(1, *)
    let channels = parts.map { $0.shape[1] }
    let total = channels.reduce(0, +)
    var outShape = first.shape
    outShape[1] = total
    let out = Tensor(uninitialized: outShape)
    let sources = parts.map { $0.contiguousData() }
    for i in 0..<first.shape[0] {
        var dst = out.data + i * total * spatial
        for (src, c) in zip(sources, channels) {
            dst.update(from: src.data + i * c * spatial, count: c * spatial)
            dst += c * spatial
        }
    }
    return Tensor.record(out, "join_channels", parts) { g, need in
        var start = 0
        return try channels.enumerated().map { k, c in
            defer { start += c }
            return need[k] ? try sliceChannels(g, start..<(start + c)) : nil
        }
    }
}

/// Channels `range` of `[N, C, ...]`; recorded.
private func sliceChannels(_ x: Tensor, _ range: Range<Int>) throws -> Tensor {
    let channels = x.shape[1]
    let spatial = x.shape.dropFirst(2).reduce(1, *)
    var outShape = x.shape
    outShape[1] = range.count
    let out = Tensor(uninitialized: outShape)
    let src = x.contiguousData()
    for i in 0..<x.shape[0] {
        (out.data + i * range.count * spatial)
            .update(from: src.data + (i * channels + range.lowerBound) * spatial, count: range.count * spatial)
    }
    let fullShape = x.shape
    return Tensor.record(out, "slice_channels", [x]) { g, _ in
        func zeros(_ c: Int) -> Tensor {
            var s = fullShape
            s[1] = c
            return Tensor(zeros: s)
        }
        let pieces = [zeros(range.lowerBound), g, zeros(channels - range.upperBound)].filter { $0.shape[1] > 0 }
        return [try joinChannels(pieces)]
    }
}
