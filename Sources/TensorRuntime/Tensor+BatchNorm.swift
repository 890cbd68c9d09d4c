/// Batch normalisation (Ioffe and Szegedy, 2015) over the channel axis of `[N, C]` or `[N, C, H, W]`.
extension Tensor {
    /// Normalises each channel by its batch (or running) mean and variance, then scales by `weight`
    /// and shifts by `bias`.
    ///
    /// PyTorch's semantics: in training the batch's biased variance normalises, and when running
    /// statistics are given they are updated in place as
    /// `running = (1 - momentum) * running + momentum * batchStat`, using the *unbiased* variance
    /// for `runningVar`. In evaluation the running statistics normalise; with none given (PyTorch's
    /// `track_running_stats=False`) the batch statistics are used in both modes. The running
    /// statistics are buffers, never differentiated. The caller counts batches
    /// (`num_batches_tracked`); a cumulative average is `momentum = 1 / batchesSoFar`.
    ///
    /// The forward is one fused kernel. The first-order backward is the closed form
    /// `dx = gamma * invstd * (g - mean(g) - xhat * mean(g * xhat))`, run as a fused kernel; when
    /// the backward pass is itself recorded (`createGraph`) the same formula is built from
    /// differentiable ops instead, so gradients of gradients are exact too.
    ///
    /// With a `synchronizer` of more than one rank (synchronized batch norm), the batch is the
    /// union of every rank's batch: the per-channel sums of the forward (mean, then squared
    /// deviations) and of the backward (`sum(g)`, `sum(g * (x - mean))`) are allreduced, so each
    /// rank normalises and back-propagates exactly as one process would on the whole batch.
    /// `dweight` and `dbias` stay local sums; the optimizer's gradient average completes them.
    ///
    /// With `leakySlope`, the result is `leakyRelu(batchNorm(...), negativeSlope: leakySlope)` (0:
    /// a ReLU) as one recorded op: the activation is applied as each value is written, so the
    /// normalised values are never written on their own, and the backward reads its mask from
    /// the result (positive exactly where the normalised value is). Values and first-order
    /// gradients are those of the two ops one after the other bit for bit, and second-order ones
    /// agree within 1e-5 (`BatchNormActivationTests`).
    public func batchNorm(
        weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
        training: Bool, momentum: Float = 0.1, eps: Float = 1e-5, synchronizer: (any Communicator)? = nil,
        leakySlope: Float? = nil
    ) throws -> Tensor {
        try Profiler.measure(leakySlope == nil ? "batch_norm" : "batch_norm+leaky_relu") {
            try batchNormUnprofiled(weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                                    training: training, momentum: momentum, eps: eps,
                                    synchronizer: synchronizer.flatMap { $0.size > 1 ? $0 : nil }, leakySlope: leakySlope)
        }
    }

    private func batchNormUnprofiled(
        weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
        training: Bool, momentum: Float, eps: Float, synchronizer: (any Communicator)?, leakySlope: Float?
    ) throws -> Tensor {
        guard rank == 2 || rank == 4 else {
            throw TensorError("batchNorm: expected an input of shape [N, C] or [N, C, H, W], got \(describe(shape))")
        }
        let n = shape[0], c = shape[1]
        let spatial = rank == 4 ? shape[2] * shape[3] : 1
        let m = n * spatial
        for (label, t) in [("weight", weight), ("bias", bias), ("runningMean", runningMean), ("runningVar", runningVar)] {
            if let t, t.shape != [c] {
                throw TensorError("batchNorm: \(label) has shape \(describe(t.shape)), expected [\(c)] for input \(describe(shape))")
            }
        }
        guard (runningMean == nil) == (runningVar == nil) else {
            throw TensorError("batchNorm: runningMean and runningVar must be given together")
        }
        let batchStats = training || runningMean == nil
        // Only training synchronizes: every rank runs the training evaluations, while sampling
        // may happen on rank 0 alone.
        let sync = batchStats && training ? synchronizer : nil
        if batchStats && m < 2 && training && sync == nil {
            throw TensorError("batchNorm: expected more than 1 value per channel when training, got input \(describe(shape))")
        }

        let x = contiguousData()
        var globalCount = Double(m)
        var mean = [Float](repeating: 0, count: c)
        var invstd = [Float](repeating: 0, count: c)
        if batchStats {
            // Two passes (mean, then squared deviations) rather than E[x^2] - E[x]^2, which cancels.
            let layout = ChannelLayout(n: n, c: c, spatial: spatial)
            var sums = layout.sums(x.data)
            var total = Double(m)
            if let sync {
                sums.append(total)
                try sync.allreduce(&sums, operation: "synchronized batch norm")
                total = sums.removeLast()
            }
            for k in 0..<c { mean[k] = Float(sums[k] / total) }
            var squares = layout.sums(x.data, times: x.data, centredOn: mean)
            if let sync { try sync.allreduce(&squares, operation: "synchronized batch norm") }
            let variance = squares.map { Float($0 / total) }
            if total < 2 && training {
                throw TensorError("batchNorm: expected more than 1 value per channel when training, got input \(describe(shape))")
            }
            globalCount = total
            if training, let rm = runningMean, let rv = runningVar {
                guard rm.isContiguous, rv.isContiguous else {
                    throw TensorError("batchNorm: running statistics must be contiguous to be updated in place")
                }
                let correction = Float(total / (total - 1))
                let pm = rm.data, pv = rv.data
                for k in 0..<c {
                    pm[k] = (1 - momentum) * pm[k] + momentum * mean[k]
                    pv[k] = (1 - momentum) * pv[k] + momentum * variance[k] * correction
                }
            }
            for k in 0..<c { invstd[k] = 1 / (variance[k] + eps).squareRoot() }
        } else {
            let rm = runningMean!.scalars, rv = runningVar!.scalars
            for k in 0..<c {
                mean[k] = rm[k]
                invstd[k] = 1 / (rv[k] + eps).squareRoot()
            }
        }

        let gamma = weight?.scalars ?? [Float](repeating: 1, count: c)
        let beta = bias?.scalars ?? [Float](repeating: 0, count: c)
        let scale = (0..<c).map { invstd[$0] * gamma[$0] }
        let shift = (0..<c).map { beta[$0] - mean[$0] * scale[$0] }
        let out = Tensor(uninitialized: shape)
        ChannelLayout(n: n, c: c, spatial: spatial).affine(x.data, scale, offset: shift, into: out.data, leakySlope: leakySlope)

        var inputs = [self]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        let input = self
        let (savedMean, savedInvstd, count) = (mean, invstd, globalCount)
        return Tensor.recordUsingOutput(out, leakySlope == nil ? "batch_norm" : "batch_norm_leaky_relu", inputs) { g, y, need in
            let grads: (dx: Tensor?, dweight: Tensor, dbias: Tensor)
            if GradMode.isEnabled {
                if sync != nil {
                    throw TensorError("batchNorm: synchronized batch norm has no second-order gradient (createGraph)")
                }
                // The activation's backward, linear in g (its mask held constant).
                let g = try leakySlope.map { try leakyGradient(g, output: y, slope: $0, gain: 1) } ?? g
                grads = try batchNormBackwardComposite(
                    g, input, weight: weight, mean: savedMean, invstd: savedInvstd,
                    batchStats: batchStats, eps: eps, needInput: need[0])
            } else {
                grads = try batchNormBackwardFused(
                    g, input, gamma: gamma, mean: savedMean, invstd: savedInvstd,
                    batchStats: batchStats, needInput: need[0], synchronizer: sync, count: count,
                    activation: leakySlope.map { (y, $0) })
            }
            var result: [Tensor?] = [grads.dx]
            if weight != nil { result.append(grads.dweight) }
            if bias != nil { result.append(grads.dbias) }
            return result
        }
    }
}

/// Contiguous `[n, c, spatial]` data, walked one channel run at a time; `[N, C]` input
/// (`spatial == 1`) is walked row by row instead, so the inner loops run across channels.
private struct ChannelLayout {
    let n: Int, c: Int, spatial: Int

    /// Per channel k, the sum of `u`, or with `v` the sum of `u * (v - centre[k])`. Each run is
    /// summed in Float and the runs in Double, so large batches lose little.
    func sums(
        _ u: UnsafeMutablePointer<Float>, times v: UnsafeMutablePointer<Float>? = nil, centredOn centre: [Float] = []
    ) -> [Double] {
        var total = [Double](repeating: 0, count: c)
        let centre = v == nil ? [Float](repeating: 0, count: c) : centre
        total.withUnsafeMutableBufferPointer { t in
            centre.withUnsafeBufferPointer { mu in
                if spatial == 1 {
                    for i in 0..<n {
                        let p = u + i * c
                        if let v {
                            let q = v + i * c
                            for k in 0..<c { t[k] += Double(p[k] * (q[k] - mu[k])) }
                        } else {
                            for k in 0..<c { t[k] += Double(p[k]) }
                        }
                    }
                    return
                }
                // Channels split over the threads; each channel's runs are added in batch order,
                // and each thread reads its channels of one image after the other (in memory order).
                ParallelLoop.chunks(c, bytes: n * c * spatial * (v == nil ? 4 : 8)) { channels in
                    for i in 0..<n {
                        for k in channels {
                            let p = u + (i * c + k) * spatial
                            if let v {
                                t[k] += Double(runDot(p, v + (i * c + k) * spatial, minus: mu[k], count: spatial))
                            } else {
                                t[k] += Double(runSum(p, count: spatial))
                            }
                        }
                    }
                }
            }
        }
        return total
    }

    /// The sums of `sums(g)` and `sums(g, times: x, centredOn: centre)`, of the gradient g a leaky
    /// ReLU's backward gives, `u * (y > 0 ? 1 : slope)` (`u * 1` is `u`), computed as it goes
    /// and never written: one pass instead of three, with the same sums bit for bit (the same
    /// accumulators in the same order).
    func maskedSums(
        _ u: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>, slope: Float,
        times x: UnsafeMutablePointer<Float>, centredOn centre: [Float]
    ) -> (plain: [Double], centred: [Double]) {
        var plain = [Double](repeating: 0, count: c), centred = plain
        if spatial == 1 {
            for i in 0..<n {
                let r = i * c
                for k in 0..<c {
                    let m = y[r + k] > 0 ? u[r + k] : u[r + k] * slope
                    plain[k] += Double(m)
                    centred[k] += Double(m * (x[r + k] - centre[k]))
                }
            }
            return (plain, centred)
        }
        plain.withUnsafeMutableBufferPointer { plain in
        centred.withUnsafeMutableBufferPointer { centred in
            ParallelLoop.chunks(c, bytes: n * c * spatial * 12) { channels in
                for i in 0..<n {
                    for k in channels {
                        let base = (i * c + k) * spatial
                        let (p, q) = runMaskedSums(u + base, y + base, slope, x + base, minus: centre[k], count: spatial)
                        plain[k] += Double(p)
                        centred[k] += Double(q)
                    }
                }
            }
        }}
        return (plain, centred)
    }

    /// `dst = a[k] * u + b[k] * v + e[k]` in channel k (`b` ignored without `v`).
    ///
    /// With `leakySlope` (only without `v`), each value z is written as `leakyReLUValue(z, slope: leakySlope)`.
    /// With a `mask`, u is read as `u * (y > 0 ? 1 : slope)`, as in `maskedSums`.
    func affine(
        _ u: UnsafeMutablePointer<Float>, _ a: [Float], plus v: UnsafeMutablePointer<Float>? = nil, _ b: [Float] = [],
        offset e: [Float], into dst: UnsafeMutablePointer<Float>, leakySlope: Float? = nil,
        mask: (y: UnsafeMutablePointer<Float>, slope: Float)? = nil
    ) {
        if let mask {
            return maskedAffine(u, a, plus: v, b, offset: e, into: dst, mask: mask)
        }
        a.withUnsafeBufferPointer { a in
        e.withUnsafeBufferPointer { e in
        b.withUnsafeBufferPointer { b in
            if spatial == 1 {
                for i in 0..<n {
                    let p = u + i * c, d = dst + i * c
                    if let v {
                        let q = v + i * c
                        for k in 0..<c { d[k] = a[k] * p[k] + b[k] * q[k] + e[k] }
                    } else if let s = leakySlope {
                        for k in 0..<c { d[k] = leakyReLUValue(a[k] * p[k] + e[k], slope: s) }
                    } else {
                        for k in 0..<c { d[k] = a[k] * p[k] + e[k] }
                    }
                }
                return
            }
            // Runs (one image's channel) split over the threads.
            ParallelLoop.chunks(n * c, bytes: n * c * spatial * (v == nil ? 8 : 12)) { runs in
                for r in runs {
                    let k = r % c, base = r * spatial
                    let p = u + base, d = dst + base, ak = a[k], ek = e[k]
                    if let v {
                        let q = v + base, bk = b[k]
                        for j in 0..<spatial { d[j] = ak * p[j] + bk * q[j] + ek }
                    } else if leakySlope == 0 {
                        for j in 0..<spatial { d[j] = leakyReLUValue(ak * p[j] + ek, slope: 0) }
                    } else if let s = leakySlope {
                        for j in 0..<spatial { d[j] = leakyReLUValue(ak * p[j] + ek, slope: s) }
                    } else {
                        for j in 0..<spatial { d[j] = ak * p[j] + ek }
                    }
                }
            }
        }}}
    }

    /// `affine` with u read through a leaky ReLU's backward mask.
    private func maskedAffine(
        _ u: UnsafeMutablePointer<Float>, _ a: [Float], plus v: UnsafeMutablePointer<Float>?, _ b: [Float],
        offset e: [Float], into dst: UnsafeMutablePointer<Float>, mask: (y: UnsafeMutablePointer<Float>, slope: Float)
    ) {
        let s = mask.slope
        if spatial == 1 {
            for i in 0..<n {
                let r = i * c
                for k in 0..<c {
                    let m = mask.y[r + k] > 0 ? u[r + k] : u[r + k] * s
                    dst[r + k] = v.map { a[k] * m + b[k] * $0[r + k] + e[k] } ?? a[k] * m + e[k]
                }
            }
            return
        }
        a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in
        e.withUnsafeBufferPointer { e in
            ParallelLoop.chunks(n * c, bytes: n * c * spatial * (v == nil ? 12 : 16)) { runs in
                for r in runs {
                    let k = r % c, base = r * spatial
                    let p = u + base, y = mask.y + base, d = dst + base, ak = a[k], ek = e[k]
                    if let v {
                        let q = v + base, bk = b[k]
                        for j in 0..<spatial { d[j] = ak * (y[j] > 0 ? p[j] : p[j] * s) + bk * q[j] + ek }
                    } else {
                        for j in 0..<spatial { d[j] = ak * (y[j] > 0 ? p[j] : p[j] * s) + ek }
                    }
                }
            }
        }}}
    }
}

/// Sum of `count` floats. Eight independent accumulators: a single running sum is one long chain
/// of dependent adds, which the compiler may not reorder, and ran at half the speed.
@inline(__always)
private func runSum(_ p: UnsafeMutablePointer<Float>, count: Int) -> Float {
    let raw = UnsafeRawPointer(p)
    var acc = SIMD8<Float>()
    var j = 0
    while j + 8 <= count {
        acc += raw.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self)
        j += 8
    }
    var total = acc.sum()
    while j < count {
        total += p[j]
        j += 1
    }
    return total
}

/// `runSum` and `runDot` of `m = u * (y > 0 ? 1 : slope)` (with `x`): the same accumulators in
/// the same order, so the same sums bit for bit.
@inline(__always)
private func runMaskedSums(
    _ u: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ slope: Float, _ x: UnsafeMutablePointer<Float>,
    minus centre: Float, count: Int
) -> (Float, Float) {
    let ru = UnsafeRawPointer(u), ry = UnsafeRawPointer(y), rx = UnsafeRawPointer(x)
    let mu = SIMD8<Float>(repeating: centre), s = SIMD8<Float>(repeating: slope), zero = SIMD8<Float>()
    var plain = SIMD8<Float>(), centred = SIMD8<Float>()
    var j = 0
    while j + 8 <= count {
        let a = ru.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self)
        let positive = ry.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self) .> zero
        let m = (a * s).replacing(with: a, where: positive)
        plain += m
        centred += m * (rx.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self) - mu)
        j += 8
    }
    var p = plain.sum(), q = centred.sum()
    while j < count {
        let m = y[j] > 0 ? u[j] : u[j] * slope
        p += m
        q += m * (x[j] - centre)
        j += 1
    }
    return (p, q)
}

/// `sum(p * (q - centre))` over `count` floats, with eight accumulators as in `runSum`.
@inline(__always)
private func runDot(_ p: UnsafeMutablePointer<Float>, _ q: UnsafeMutablePointer<Float>, minus centre: Float, count: Int) -> Float {
    let rp = UnsafeRawPointer(p), rq = UnsafeRawPointer(q)
    let m = SIMD8<Float>(repeating: centre)
    var acc = SIMD8<Float>()
    var j = 0
    while j + 8 <= count {
        let a = rp.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self)
        let b = rq.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self)
        acc += a * (b - m)
        j += 8
    }
    var total = acc.sum()
    while j < count {
        total += p[j] * (q[j] - centre)
        j += 1
    }
    return total
}

/// The first-order backward as fused kernels (not differentiable; used when the backward pass is
/// not recorded).
private func batchNormBackwardFused(
    _ g: Tensor, _ x: Tensor, gamma: [Float], mean: [Float], invstd: [Float],
    batchStats: Bool, needInput: Bool, synchronizer: (any Communicator)?, count: Double,
    activation: (output: Tensor, slope: Float)? = nil
) throws -> (dx: Tensor?, dweight: Tensor, dbias: Tensor) {
    let c = x.shape[1]
    let layout = ChannelLayout(n: x.shape[0], c: c, spatial: x.rank == 4 ? x.shape[2] * x.shape[3] : 1)
    let gc = g.contiguousData(), xc = x.contiguousData()
    // Through the leaky ReLU's backward first: g * (y > 0 ? 1 : slope), computed where it is read.
    let yc = activation?.output.contiguousData()
    let mask = yc.map { (y: $0.data, slope: activation!.slope) }
    defer { withExtendedLifetime(yc) {} }
    var sumG: [Double], sumGXc: [Double]
    if let mask {
        (sumG, sumGXc) = layout.maskedSums(gc.data, y: mask.y, slope: mask.slope, times: xc.data, centredOn: mean)
    } else {
        sumG = layout.sums(gc.data)
        sumGXc = layout.sums(gc.data, times: xc.data, centredOn: mean)
    }
    // sum(g * xhat) = invstd * sum(g * (x - mean))
    let dweight = try Tensor(shape: [c], scalars: (0..<c).map { Float(sumGXc[$0]) * invstd[$0] })
    let dbias = try Tensor(shape: [c], scalars: sumG.map { Float($0) })
    // Every rank takes part in the reduction, even one that needs no input gradient here.
    if let synchronizer {
        var both = sumG + sumGXc
        try synchronizer.allreduce(&both, operation: "synchronized batch norm (backward)")
        sumG = Array(both[0..<c])
        sumGXc = Array(both[c...])
    }
    guard needInput else { return (nil, dweight, dbias) }

    // dx = gamma * invstd * (g - mean(g) - xhat * mean(g * xhat)), an affine map of g and x per
    // channel: a * g + b * x + e.
    let inverseM = 1 / count
    var a = [Float](repeating: 0, count: c), b = a, e = a
    for k in 0..<c {
        a[k] = gamma[k] * invstd[k]
        if batchStats {
            let meanG = Float(sumG[k] * inverseM)
            let slope = Float(sumGXc[k] * inverseM) * invstd[k] * invstd[k]
            b[k] = -a[k] * slope
            e[k] = a[k] * (mean[k] * slope - meanG)
        }
    }
    let dx = Tensor(uninitialized: x.shape)
    layout.affine(gc.data, a, plus: batchStats ? xc.data : nil, b, offset: e, into: dx.data, mask: mask)
    return (dx, dweight, dbias)
}

/// The same backward built from recorded ops, so that it can be differentiated again.
private func batchNormBackwardComposite(
    _ g: Tensor, _ x: Tensor, weight: Tensor?, mean: [Float], invstd: [Float],
    batchStats: Bool, eps: Float, needInput: Bool
) throws -> (dx: Tensor?, dweight: Tensor, dbias: Tensor) {
    let c = x.shape[1]
    let axes = x.rank == 4 ? [0, 2, 3] : [0]
    let view = x.rank == 4 ? [1, c, 1, 1] : [1, c]
    let m = Float(axes.reduce(1) { $0 * x.shape[$1] })
    let inv: Tensor, xhat: Tensor
    if batchStats {
        // Recomputed from x so that the statistics' dependence on x is part of the graph.
        let centred = try x - x.mean(axes: axes, keepDims: true)
        inv = inverseSquareRoot(try (centred * centred).mean(axes: axes, keepDims: true), plus: eps)
        xhat = try centred * inv
    } else {
        inv = try Tensor(shape: view, scalars: invstd)
        xhat = try (x - Tensor(shape: view, scalars: mean)) * inv
    }
    let sumG = try g.sum(axes: axes, keepDims: true)
    let sumGXhat = try (g * xhat).sum(axes: axes, keepDims: true)
    var dx: Tensor?
    if needInput {
        let scale = try weight.map { try inv * $0.reshaped(view) } ?? inv
        if batchStats {
            dx = try scale * (g - sumG * (1 / m) - xhat * (sumGXhat * (1 / m)))
        } else {
            dx = try g * scale
        }
    }
    return (dx, try sumGXhat.reshaped([c]), try sumG.reshaped([c]))
}

/// `1 / sqrt(v + eps)` elementwise, recorded so that it can be differentiated any number of times.
///
/// Shared by the normalisation ops until a general `rsqrt` exists in the runtime.
func inverseSquareRoot(_ v: Tensor, plus eps: Float) -> Tensor {
    let out = v.map { 1 / ($0 + eps).squareRoot() }
    return Tensor.record(out, "inverse_sqrt", [v]) { g, _ in
        // d/dv (v + eps)^(-1/2) = -1/2 (v + eps)^(-3/2); recomputed rather than capturing `out`,
        // which would make the output own itself through its gradFn.
        let r = inverseSquareRoot(v, plus: eps)
        return [try (g * r * r * r) * -0.5]
    }
}
