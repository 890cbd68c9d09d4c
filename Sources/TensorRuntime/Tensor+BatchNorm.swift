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
    public func batchNorm(
        weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
        training: Bool, momentum: Float = 0.1, eps: Float = 1e-5
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
        if batchStats && m < 2 && training {
            throw TensorError("batchNorm: expected more than 1 value per channel when training, got input \(describe(shape))")
        }

        let x = contiguousData()
        var mean = [Float](repeating: 0, count: c)
        var invstd = [Float](repeating: 0, count: c)
        if batchStats {
            var variance = [Float](repeating: 0, count: c)
            channelMoments(x.data, n: n, c: c, spatial: spatial, mean: &mean, variance: &variance)
            if training, let rm = runningMean, let rv = runningVar {
                guard rm.isContiguous, rv.isContiguous else {
                    throw TensorError("batchNorm: running statistics must be contiguous to be updated in place")
                }
                let correction = Float(m) / Float(m - 1)
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
        let out = Tensor(uninitialized: shape)
        let src = x.data, dst = out.data
        for i in 0..<n {
            for k in 0..<c {
                let scale = invstd[k] * gamma[k]
                let shift = beta[k] - mean[k] * scale
                let base = (i * c + k) * spatial
                let p = src + base, q = dst + base
                for j in 0..<spatial { q[j] = p[j] * scale + shift }
            }
        }

        var inputs = [self]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        let input = self
        let (savedMean, savedInvstd) = (mean, invstd)
        return Tensor.record(out, "batch_norm", inputs) { g, need in
            let grads: (dx: Tensor?, dweight: Tensor, dbias: Tensor)
            if GradMode.isEnabled {
                grads = try batchNormBackwardComposite(
                    g, input, weight: weight, mean: savedMean, invstd: savedInvstd,
                    batchStats: batchStats, eps: eps, needInput: need[0])
            } else {
                grads = try batchNormBackwardFused(
                    g, input, gamma: gamma, mean: savedMean, invstd: savedInvstd,
                    batchStats: batchStats, needInput: need[0])
            }
            var result: [Tensor?] = [grads.dx]
            if weight != nil { result.append(grads.dweight) }
            if bias != nil { result.append(grads.dbias) }
            return result
        }
    }
}

/// Per-channel mean and biased variance of contiguous `[n, c, spatial]` data, in two passes.
///
/// Each contiguous run is summed in Float and the runs in Double, so large batches lose little.
private func channelMoments(
    _ x: UnsafeMutablePointer<Float>, n: Int, c: Int, spatial: Int,
    mean: inout [Float], variance: inout [Float]
) {
    let m = Double(n * spatial)
    for k in 0..<c {
        var total = 0.0
        for i in 0..<n {
            let p = x + (i * c + k) * spatial
            var acc: Float = 0
            for j in 0..<spatial { acc += p[j] }
            total += Double(acc)
        }
        let mu = Float(total / m)
        var squares = 0.0
        for i in 0..<n {
            let p = x + (i * c + k) * spatial
            var acc: Float = 0
            for j in 0..<spatial {
                let d = p[j] - mu
                acc += d * d
            }
            squares += Double(acc)
        }
        mean[k] = mu
        variance[k] = Float(squares / m)
    }
}

/// The first-order backward as one kernel (not differentiable; used when the backward pass is not
/// recorded).
private func batchNormBackwardFused(
    _ g: Tensor, _ x: Tensor, gamma: [Float], mean: [Float], invstd: [Float],
    batchStats: Bool, needInput: Bool
) throws -> (dx: Tensor?, dweight: Tensor, dbias: Tensor) {
    let n = x.shape[0], c = x.shape[1]
    let spatial = x.rank == 4 ? x.shape[2] * x.shape[3] : 1
    let gc = g.contiguousData(), xc = x.contiguousData()
    let pg = gc.data, px = xc.data
    var sumG = [Double](repeating: 0, count: c)
    var sumGXc = [Double](repeating: 0, count: c)
    for i in 0..<n {
        for k in 0..<c {
            let base = (i * c + k) * spatial
            let p = px + base, q = pg + base
            let mu = mean[k]
            var a: Float = 0, b: Float = 0
            for j in 0..<spatial {
                a += q[j]
                b += q[j] * (p[j] - mu)
            }
            sumG[k] += Double(a)
            sumGXc[k] += Double(b)
        }
    }
    let dweight = Tensor(uninitialized: [c]), dbias = Tensor(uninitialized: [c])
    for k in 0..<c {
        dweight.data[k] = Float(sumGXc[k]) * invstd[k]  // sum(g * xhat)
        dbias.data[k] = Float(sumG[k])
    }
    guard needInput else { return (nil, dweight, dbias) }

    let dx = Tensor(uninitialized: x.shape)
    let pd = dx.data
    let inverseM = 1 / Float(n * spatial)
    for i in 0..<n {
        for k in 0..<c {
            let base = (i * c + k) * spatial
            let p = px + base, q = pg + base, d = pd + base
            let scale = gamma[k] * invstd[k]
            if batchStats {
                let mu = mean[k]
                let meanG = Float(sumG[k]) * inverseM
                // xhat * mean(g * xhat) = (x - mu) * invstd^2 * mean(g * (x - mu))
                let slope = Float(sumGXc[k]) * inverseM * invstd[k] * invstd[k]
                for j in 0..<spatial { d[j] = scale * (q[j] - meanG - (p[j] - mu) * slope) }
            } else {
                for j in 0..<spatial { d[j] = scale * q[j] }
            }
        }
    }
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
