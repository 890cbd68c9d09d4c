import CDNNL

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

        // Stored channels last (a bf16 convolution's result), the values are rows of C channels,
        // walked as they lie; otherwise as contiguous [N, C, H, W].
        let channelsLast = isChannelsLastDense
        let x = channelsLast ? self : contiguousData()
        let layout = channelsLast ? ChannelLayout(rows: m, c: c) : ChannelLayout(n: n, c: c, spatial: spatial)
        var globalCount = Double(m)
        var mean = [Float](repeating: 0, count: c)
        var invstd = [Float](repeating: 0, count: c)
        if batchStats {
            // Two passes (mean, then squared deviations) rather than E[x^2] - E[x]^2, which cancels;
            // rows of channels make both in one pass over memory, block by block (`ChannelRows`).
            var total = Double(m)
            var squares: [Double]
            if sync == nil, let both = layout.blockwiseStatistics(x.data) {
                for k in 0..<c { mean[k] = Float(both.sums[k] / total) }
                squares = both.squares
            } else {
                var sums = layout.sums(x.data)
                if let sync {
                    sums.append(total)
                    try sync.allreduce(&sums, operation: "synchronized batch norm")
                    total = sums.removeLast()
                }
                for k in 0..<c { mean[k] = Float(sums[k] / total) }
                squares = layout.sums(x.data, times: x.data, centredOn: mean)
            }
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
        let out = channelsLast ? Tensor(uninitializedChannelsLast: shape) : Tensor(uninitialized: shape)
        let withCopies = wantsBF16Copy(layout, channelsLast: channelsLast)
        if withCopies {
            try keepBF16ChannelsLastCopy(of: out) { copy in
                layout.affine(x.data, scale, offset: shift, into: out.data, leakySlope: leakySlope, bf16: copy)
            }
        } else {
            layout.affine(x.data, scale, offset: shift, into: out.data, leakySlope: leakySlope)
        }

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
                    activation: leakySlope.map { (y, $0) }, bf16Copy: withCopies)
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
    /// Set for rows of channels in groups of 16 (`ChannelRows`), which the methods hand over to.
    private var rows: ChannelRows?

    init(n: Int, c: Int, spatial: Int) {
        (self.n, self.c, self.spatial) = (n, c, spatial)
    }

    /// `rows` rows of `c` channels: an [N, C, H, W] tensor stored channels last (N H W rows).
    init(rows: Int, c: Int) {
        self.init(n: rows, c: c, spatial: 1)
        if c % ChannelRows.width == 0 { self.rows = ChannelRows(rows: rows, c: c) }
    }

    /// Per channel k, the sum of `u`, or with `v` the sum of `u * (v - centre[k])`. Each run is
    /// summed in Float and the runs in Double, so large batches lose little.
    func sums(
        _ u: UnsafeMutablePointer<Float>, times v: UnsafeMutablePointer<Float>? = nil, centredOn centre: [Float] = []
    ) -> [Double] {
        if let rows {
            let r = rows.sums(u, mask: nil, times: v, centredOn: centre)
            return r.centred ?? r.plain
        }
        var total = [Double](repeating: 0, count: c)
        let centre = v == nil ? [Float](repeating: 0, count: c) : centre
        total.withUnsafeMutableBufferPointer { t in
            centre.withUnsafeBufferPointer { mu in
                if spatial == 1 {
                    // Channels split over the threads, each channel's rows added in order.
                    ParallelLoop.chunks(c, bytes: n * c * (v == nil ? 4 : 8)) { channels in
                        for i in 0..<n {
                            let p = u + i * c
                            if let v {
                                let q = v + i * c
                                for k in channels { t[k] += Double(p[k] * (q[k] - mu[k])) }
                            } else {
                                for k in channels { t[k] += Double(p[k]) }
                            }
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
        if let rows {
            let r = rows.sums(u, mask: (y, slope), times: x, centredOn: centre)
            return (r.plain, r.centred!)
        }
        var plain = [Double](repeating: 0, count: c), centred = plain
        if spatial == 1 {
            plain.withUnsafeMutableBufferPointer { plain in
            centred.withUnsafeMutableBufferPointer { centred in
            centre.withUnsafeBufferPointer { centre in
                ParallelLoop.chunks(c, bytes: n * c * 12) { channels in
                    for i in 0..<n {
                        let r = i * c
                        for k in channels {
                            let m = y[r + k] > 0 ? u[r + k] : u[r + k] * slope
                            plain[k] += Double(m)
                            centred[k] += Double(m * (x[r + k] - centre[k]))
                        }
                    }
                }
            }}}
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

    /// For rows of channels (`ChannelRows`), the per-channel sums and sums of squared deviations
    /// from the mean in one pass over memory; nil otherwise.
    func blockwiseStatistics(_ u: UnsafeMutablePointer<Float>) -> (sums: [Double], squares: [Double])? {
        rows?.statistics(u)
    }

    /// Whether `affine` can also write a bf16 copy of its result (rows of channels in groups of 16).
    var writesBF16Copies: Bool { rows != nil }

    /// `dst = a[k] * u + b[k] * v + e[k]` in channel k (`b` ignored without `v`).
    ///
    /// With `leakySlope` (only without `v`), each value z is written as `leakyReLUValue(z, slope: leakySlope)`.
    /// With a `mask`, u is read as `u * (y > 0 ? 1 : slope)`, as in `maskedSums`.
    func affine(
        _ u: UnsafeMutablePointer<Float>, _ a: [Float], plus v: UnsafeMutablePointer<Float>? = nil, _ b: [Float] = [],
        offset e: [Float], into dst: UnsafeMutablePointer<Float>, leakySlope: Float? = nil,
        mask: (y: UnsafeMutablePointer<Float>, slope: Float)? = nil, bf16 copy: UnsafeMutablePointer<UInt16>? = nil
    ) {
        if let rows {
            return rows.affine(u, a, plus: v, b, offset: e, into: dst, leakySlope: leakySlope, mask: mask, bf16: copy)
        }
        precondition(copy == nil, "a bf16 copy is written only for rows of channels (writesBF16Copies)")
        if let mask {
            return maskedAffine(u, a, plus: v, b, offset: e, into: dst, mask: mask)
        }
        a.withUnsafeBufferPointer { a in
        e.withUnsafeBufferPointer { e in
        b.withUnsafeBufferPointer { b in
            if spatial == 1 {
                // Rows split over the threads.
                ParallelLoop.chunks(n, bytes: n * c * (v == nil ? 8 : 12)) { rows in
                    for i in rows {
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
        a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in
        e.withUnsafeBufferPointer { e in
            if spatial == 1 {
                // Rows split over the threads.
                ParallelLoop.chunks(n, bytes: n * c * (v == nil ? 12 : 16)) { rows in
                    for i in rows {
                        let r = i * c
                        let p = u + r, y = mask.y + r, d = dst + r
                        if let v {
                            let q = v + r
                            for k in 0..<c { d[k] = a[k] * (y[k] > 0 ? p[k] : p[k] * s) + b[k] * q[k] + e[k] }
                        } else {
                            for k in 0..<c { d[k] = a[k] * (y[k] > 0 ? p[k] : p[k] * s) + e[k] }
                        }
                    }
                }
                return
            }
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

/// Rows of channels, `c` a multiple of 16 (an [N, C, H, W] tensor stored channels last): the
/// loops of `ChannelLayout` on 16 channels at a time.
///
/// Per-channel sums keep one Float accumulator per channel over each block of 64 rows, and add
/// the blocks in order in Double; the blocks are split over the threads, so the sums are
/// bit-identical whatever the thread count.
private struct ChannelRows {
    typealias Lanes = SIMD16<Float>
    static let width = 16
    static let block = 64
    let rows: Int, c: Int

    private var groups: Int { c / ChannelRows.width }

    @inline(__always)
    private func load(_ p: UnsafeMutablePointer<Float>, _ offset: Int) -> Lanes {
        UnsafeRawPointer(p + offset).loadUnaligned(as: Lanes.self)
    }

    private static func lanes(_ values: [Float]) -> [Lanes] {
        stride(from: 0, to: values.count, by: width).map { Lanes(values[$0..<$0 + width]) }
    }

    /// Per channel, the sum of m and, with `v`, of m (v - centre), where m is u, or with a
    /// `mask` u (y > 0 ? 1 : slope).
    func sums(
        _ u: UnsafeMutablePointer<Float>, mask: (y: UnsafeMutablePointer<Float>, slope: Float)?,
        times v: UnsafeMutablePointer<Float>?, centredOn centre: [Float]
    ) -> (plain: [Double], centred: [Double]?) {
        // Each block of rows is summed in Float into its own row of `partial` (blocks split over
        // the threads, each reading whole rows), then the blocks are added in order in Double.
        let blocks = (rows + ChannelRows.block - 1) / ChannelRows.block
        let (rows, c, groups) = (rows, c, groups)
        let partial = UnsafeMutablePointer<Lanes>.allocate(capacity: blocks * groups * 2)
        defer { partial.deallocate() }
        let mu = v == nil ? [] : ChannelRows.lanes(centre)
        let slope = Lanes(repeating: mask?.slope ?? 1), zero = Lanes()
        mu.withUnsafeBufferPointer { mu in
            ParallelLoop.chunks(blocks, bytes: rows * c * (v == nil ? 4 : 8) + (mask == nil ? 0 : rows * c * 4)) { chunk in
                for blockIndex in chunk {
                    let accP = partial + blockIndex * groups * 2, accC = accP + groups
                    accP.initialize(repeating: zero, count: groups * 2)
                    for i in (blockIndex * ChannelRows.block)..<min((blockIndex + 1) * ChannelRows.block, rows) {
                        let row = i * c
                        if let v {
                            for j in 0..<groups {
                                let o = row + j * ChannelRows.width
                                var m = load(u, o)
                                if let mask { m = (m * slope).replacing(with: m, where: load(mask.y, o) .> zero) }
                                accP[j] += m
                                accC[j] += m * (load(v, o) - mu[j])
                            }
                        } else {
                            for j in 0..<groups { accP[j] += load(u, row + j * ChannelRows.width) }
                        }
                    }
                }
            }
        }
        var plain = [Double](repeating: 0, count: c), centred = [Double](repeating: 0, count: v == nil ? 0 : c)
        for blockIndex in 0..<blocks {
            let accP = partial + blockIndex * groups * 2, accC = accP + groups
            for j in 0..<groups {
                for l in 0..<ChannelRows.width {
                    plain[j * ChannelRows.width + l] += Double(accP[j][l])
                    if v != nil { centred[j * ChannelRows.width + l] += Double(accC[j][l]) }
                }
            }
        }
        return (plain, v == nil ? nil : centred)
    }

    /// Per channel, the sum and the sum of squared deviations from the mean, reading memory once:
    /// each block of rows (in the cache after its first pass) gets its own sum and squared
    /// deviations from its own mean in Float, and the blocks are combined in order in Double
    /// (Chan et al.'s pairwise update: squares = sum of the blocks' squares + n_b (mean_b - mean)^2),
    /// so the result does not depend on the thread count.
    func statistics(_ u: UnsafeMutablePointer<Float>) -> (sums: [Double], squares: [Double]) {
        let blocks = (rows + ChannelRows.block - 1) / ChannelRows.block
        let (rows, c, groups) = (rows, c, groups)
        let partial = UnsafeMutablePointer<Lanes>.allocate(capacity: blocks * groups * 2)
        defer { partial.deallocate() }
        let zero = Lanes()
        ParallelLoop.chunks(blocks, bytes: rows * c * 4) { chunk in
            for blockIndex in chunk {
                let sums = partial + blockIndex * groups * 2, squares = sums + groups
                sums.initialize(repeating: zero, count: groups * 2)
                let first = blockIndex * ChannelRows.block, end = min(first + ChannelRows.block, rows)
                for i in first..<end {
                    for j in 0..<groups { sums[j] += load(u, i * c + j * ChannelRows.width) }
                }
                let scale = Lanes(repeating: 1 / Float(end - first))
                for j in 0..<groups {
                    let mean = sums[j] * scale
                    var acc = zero
                    for i in first..<end {
                        let d = load(u, i * c + j * ChannelRows.width) - mean
                        acc += d * d
                    }
                    squares[j] = acc
                }
            }
        }
        var sums = [Double](repeating: 0, count: c)
        for blockIndex in 0..<blocks {
            let s = partial + blockIndex * groups * 2
            for j in 0..<groups { for l in 0..<ChannelRows.width { sums[j * ChannelRows.width + l] += Double(s[j][l]) } }
        }
        let mean = sums.map { $0 / Double(rows) }
        var squares = [Double](repeating: 0, count: c)
        for blockIndex in 0..<blocks {
            let s = partial + blockIndex * groups * 2, q = s + groups
            let n = Double(min((blockIndex + 1) * ChannelRows.block, rows) - blockIndex * ChannelRows.block)
            for j in 0..<groups {
                for l in 0..<ChannelRows.width {
                    let k = j * ChannelRows.width + l
                    let d = Double(s[j][l]) / n - mean[k]
                    squares[k] += Double(q[j][l]) + n * d * d
                }
            }
        }
        return (sums, squares)
    }

    /// `ChannelLayout.affine` on rows: `dst = a[k] * m + b[k] * v + e[k]`, m being u or, with a
    /// `mask`, u (y > 0 ? 1 : slope); with `leakySlope` (no `v`, no mask) the leaky ReLU of it.
    func affine(
        _ u: UnsafeMutablePointer<Float>, _ a: [Float], plus v: UnsafeMutablePointer<Float>?, _ b: [Float],
        offset e: [Float], into dst: UnsafeMutablePointer<Float>, leakySlope: Float?,
        mask: (y: UnsafeMutablePointer<Float>, slope: Float)?, bf16 copy: UnsafeMutablePointer<UInt16>?
    ) {
        let la = ChannelRows.lanes(a), le = ChannelRows.lanes(e), lb = v == nil ? [] : ChannelRows.lanes(b)
        let zero = Lanes(), maskSlope = Lanes(repeating: mask?.slope ?? 1)
        let (groups, c) = (groups, c)
        let bytes = rows * c * (8 + (v == nil ? 0 : 4) + (mask == nil ? 0 : 4))
        la.withUnsafeBufferPointer { la in
        le.withUnsafeBufferPointer { le in
        lb.withUnsafeBufferPointer { lb in
            ParallelLoop.chunks(rows, bytes: bytes) { chunk in
                for i in chunk {
                    for j in 0..<groups {
                        let o = i * c + j * ChannelRows.width
                        var m = load(u, o)
                        if let mask { m = (m * maskSlope).replacing(with: m, where: load(mask.y, o) .> zero) }
                        var z = la[j] * m + le[j]
                        if let v {
                            z = la[j] * m + lb[j] * load(v, o) + le[j]
                        } else if let leakySlope {
                            z = leakySlope == 0 ? z.replacing(with: zero, where: z .< zero)
                                : (z * Lanes(repeating: leakySlope)).replacing(with: z, where: z .> zero)
                        }
                        UnsafeMutableRawPointer(dst + o).storeBytes(of: z, as: Lanes.self)
                    }
                    // The row just written, rounded to bf16 while it is in the cache.
                    if let copy { bfloat16Round(dst + i * c, into: copy + i * c, count: c) }
                }
            }
        }}}
    }
}

/// The bfloat16 value nearest the float with bit pattern `b` (ties to even; NaN stays a quiet
/// NaN), as a bit pattern: the rounding oneDNN's f32-to-bf16 reorders make.
@inline(__always)
func bfloat16Bits(_ b: UInt32) -> UInt16 {
    let rounded = UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b &>> 16) & 1)) &>> 16)
    return (b & 0x7FFF_FFFF) > 0x7F80_0000 ? 0x7FC0 : rounded
}

/// `bfloat16Bits` of `count` floats. A scalar loop, which LLVM vectorises.
@inline(__always)
func bfloat16Round(_ source: UnsafeMutablePointer<Float>, into destination: UnsafeMutablePointer<UInt16>, count: Int) {
    let bits = UnsafeMutableRawPointer(source).assumingMemoryBound(to: UInt32.self)
    for i in 0..<count { destination[i] = bfloat16Bits(bits[i]) }
}

/// A bf16 copy of an [N, C, H, W] tensor stored channels last, in oneDNN's `nhwc` bf16 layout,
/// written by `body` into the storage it is given; kept on `tensor` (`keepLayoutCopies`) for the
/// convolution that reads it next.
func keepBF16ChannelsLastCopy(of tensor: Tensor, _ body: (UnsafeMutablePointer<UInt16>) -> Void) throws {
    let storage = Storage(count: (tensor.count + 1) / 2)
    body(UnsafeMutableRawPointer(storage.pointer).assumingMemoryBound(to: UInt16.self))
    tensor.keepLayoutCopies()
    tensor.layoutCopies?.add(LayoutCopy(storage: storage, descriptor: try DNNLContext.channelsLastDesc(tensor.shape, type: dnnl_bf16)))
}

/// Whether the convolutions running now read bf16 copies stored channels last: in bf16, inside
/// `ActivationLayout.storingConvolutionResultsChannelsLast`.
func convolutionsReadBF16ChannelsLastCopies() -> Bool {
    ConvGeometry.channelsLastScope.value && ComputePrecision.current == .bf16
}

/// Whether a batch norm result (or input gradient) stored channels last as rows of `layout`
/// should carry a bf16 copy: when bf16 convolutions store their results channels last
/// (`ActivationLayout.storingConvolutionResultsChannelsLast`), the next one reads exactly that.
private func wantsBF16Copy(_ layout: ChannelLayout, channelsLast: Bool) -> Bool {
    channelsLast && layout.writesBF16Copies && convolutionsReadBF16ChannelsLastCopies()
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
    activation: (output: Tensor, slope: Float)? = nil, bf16Copy: Bool = false
) throws -> (dx: Tensor?, dweight: Tensor, dbias: Tensor) {
    let c = x.shape[1]
    let spatial = x.rank == 4 ? x.shape[2] * x.shape[3] : 1
    // As the forward walked x: rows of channels when it is stored channels last.
    let order: ActivationLayout = x.isChannelsLastDense ? .channelsLast : .channelsFirst
    let layout = order == .channelsLast ? ChannelLayout(rows: x.shape[0] * spatial, c: c)
        : ChannelLayout(n: x.shape[0], c: c, spatial: spatial)
    let gc = g.stored(order), xc = x.stored(order)
    // Through the leaky ReLU's backward first: g * (y > 0 ? 1 : slope), computed where it is read.
    let yc = activation?.output.stored(order)
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
    let dx = order == .channelsLast ? Tensor(uninitializedChannelsLast: x.shape) : Tensor(uninitialized: x.shape)
    // As the forward did: a bf16 copy of dx for the convolution's backward that reads it next.
    if bf16Copy && order == .channelsLast && layout.writesBF16Copies {
        try keepBF16ChannelsLastCopy(of: dx) { copy in
            layout.affine(gc.data, a, plus: batchStats ? xc.data : nil, b, offset: e, into: dx.data, mask: mask, bf16: copy)
        }
    } else {
        layout.affine(gc.data, a, plus: batchStats ? xc.data : nil, b, offset: e, into: dx.data, mask: mask)
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
