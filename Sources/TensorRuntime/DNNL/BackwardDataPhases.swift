import CDNNL

/// A strided convolution's input gradient (a transposed convolution's forward) computed as
/// `stride[0] x stride[1]` forward convolutions, one per phase of dx's rows and columns, where
/// that is faster than oneDNN's backward-data kernel (`ConvGeometry.backwardDataPhasesPay`).
///
/// Along one axis, with stride s, kernel K (a multiple of s), padding p: row y = s i + a of dx
/// (phase a) receives dy through the K / s taps ky = (a + p) mod s + s t, at dy rows
/// i + floor((a + p) / s) - t. Read in ascending rows, that is a stride-1 correlation of dy with
/// those taps in reverse order, padded by K / s - 1 - floor((a + p) / s) rows before. So each
/// phase is an ordinary forward convolution: dy as the images (O channels), the reversed
/// sub-kernels with the weight's two first axes exchanged ([C, O, K/s, K/s]) as the filters,
/// giving dx's rows and columns of that phase, which are then interleaved into dx. The work is
/// the backward-data kernel's; the forward kernel runs it faster where dy is small.
struct BackwardDataPhases: Sendable {
    struct Phase: Sendable {
        /// The phase: dx's rows `row`, `row + stride[0]`, ... and columns `column`, `column + stride[1]`, ...
        let row: Int, column: Int
        /// How many rows and columns of dx the phase has.
        let size: [Int]
        let primitive: DNNLPrimitive
        var flops: Double
    }

    let geometry: ConvGeometry
    let phases: [Phase]
    /// Taps per axis of each sub-kernel: K / s.
    let taps: [Int]

    /// Along one axis: per phase, its left and right padding as a stride-1 correlation over dy and
    /// its row count; nil where the kernel is not a multiple of the stride, a phase is empty, or
    /// a padding would be negative (rows the window never reaches).
    static func axis(dx: Int, dy: Int, kernel: Int, stride: Int, padding: Int) -> [(left: Int, right: Int, count: Int)]? {
        guard stride >= 1, kernel % stride == 0 else { return nil }
        let taps = kernel / stride
        var phases: [(left: Int, right: Int, count: Int)] = []
        for a in 0..<stride {
            let count = (dx - a + stride - 1) / stride
            let left = taps - 1 - (a + padding) / stride
            let right = count - 1 + taps - dy - left
            guard count >= 1, left >= 0, right >= 0 else { return nil }
            phases.append((left, right, count))
        }
        return phases
    }

    /// The descriptor under which a weight keeps its sub-kernels (`LayoutCopies`): bf16,
    /// [phases x C, O, K/s, K/s], phase by phase.
    var subKernelsDescriptor: dnnl_memory_desc_t {
        get throws {
            let g = geometry
            return try DNNLContext.plainDesc([phases.count * g.weight[1], g.weight[0], taps[0], taps[1]], type: dnnl_bf16)
        }
    }

    /// The sub-kernels of `w` [O, C, K, K], rounded to bf16 as oneDNN rounds (`bfloat16Round`),
    /// as a copy whose `parts` are each phase's in the layout its kernel chose (none where that
    /// is the plain one); kept on `w` while it keeps layout copies (until the optimizer's next
    /// update), so that every backward pass between two updates reorders them once.
    func subKernels(_ w: Tensor) throws -> LayoutCopy {
        let descriptor = try subKernelsDescriptor
        if let kept = w.layoutCopies?.copy(matching: descriptor) { return kept }
        return try Profiler.measure("conv.bwd_data phases sub-kernels") {
            let g = geometry
            let (o, c, kh, kw) = (g.weight[0], g.weight[1], g.weight[2], g.weight[3])
            let (th, tw) = (taps[0], taps[1])
            let (sh, sw) = (g.stride[0], g.stride[1])
            let perPhase = c * o * th * tw
            // Where tap (ky, kx) of filter (o, c) goes, from the start of row (c, o) of the
            // phases' [C, O, th, tw] blocks: ky = (a + p) mod s + s t for phase a, reversed tap r = th - 1 - t.
            var target = [Int](repeating: 0, count: kh * kw)
            for ky in 0..<kh {
                let a = ((ky - g.padding[0]) % sh + sh) % sh, r = th - 1 - ky / sh
                for kx in 0..<kw {
                    let b = ((kx - g.padding[1]) % sw + sw) % sw, u = tw - 1 - kx / sw
                    target[ky * kw + kx] = (a * sw + b) * perPhase + r * tw + u
                }
            }
            let storage = Storage(count: (phases.count * perPhase + 1) / 2)
            let out = UnsafeMutableRawPointer(storage.pointer).assumingMemoryBound(to: UInt16.self)
            let wc = w.contiguousData()
            let source = UnsafeMutableRawPointer(wc.data).assumingMemoryBound(to: UInt32.self)
            // Filter by filter, reading w in memory order, on the OpenMP team. (Channel by
            // channel, or in blocks of 16 filters, ran as fast: about 1 ns a tap on one thread
            // of Zen 4, in C, for DCGAN-32's and DCGAN-64's last discriminator layers.)
            target.withUnsafeBufferPointer { target in
                ParallelLoop.chunks(o, bytes: w.count * 6) { filters in
                    for oo in filters {
                        for cc in 0..<c {
                            let taps = source + (oo * c + cc) * kh * kw, row = out + (cc * o + oo) * th * tw
                            for k in 0..<kh * kw { row[target[k]] = bfloat16Bits(taps[k]) }
                        }
                    }
                }
            }
            withExtendedLifetime(wc) {}
            var parts: [LayoutCopy] = []
            for (q, phase) in phases.enumerated() {
                if let part = try phase.primitive.chosenCopy(DNNL_ARG_WEIGHTS, of: UnsafeMutableRawPointer(out + q * perPhase)) {
                    parts.append(part)
                }
            }
            let made = LayoutCopy(storage: storage, descriptor: descriptor, parts: parts.count == phases.count ? parts : [])
            w.layoutCopies?.add(made)
            return made
        }
    }
}

extension ConvGeometry {
    /// Whether backward-data computed in phases (`BackwardDataPhases`) is faster than oneDNN's
    /// bf16 backward-data kernel: strided, with dy of 16 positions or fewer per channel (4x4).
    ///
    /// Timed alone in C on Zen 4 (bf16, `nhwc`, batch 64, 2 threads; backward-data
    /// `jit_bf16:avx512_core_bf16` against four `brgconv:avx512_core_bf16` forwards plus the
    /// interleave): from dy of 4x4, 2.0-2.1 against 2.4-2.9 ms (DCGAN-32's 256 -> 128 channels)
    /// and 8.4-8.8 against 10.8-11.2 ms (DCGAN-64's 512 -> 256); from 8x8, even or slower
    /// (9.3-9.4 against 9.3-9.9 ms at DCGAN-64's 256 -> 128, 2.3-2.6 against 2.2 ms at
    /// DCGAN-32's 128 -> 64); from 16x16, 11-13 against 9.6 ms (DCGAN-64's 128 -> 64).
    var backwardDataPhasesPay: Bool {
        stride.allSatisfy { $0 >= 2 } && output[2] * output[3] <= 16
    }
}

extension ConvolutionPrimitives {
    /// The phases of `g`'s backward-data, where they pay (`ConvGeometry.backwardDataPhasesPay`)
    /// and oneDNN's own kernel is not an AMX one (unmeasured there), or nil. With `pays: false`
    /// (tests) wherever they are exact.
    ///
    /// Only in bf16 with the kernels computing channels last and dx stored that way (DCGAN's
    /// activations, `ActivationLayout.storingConvolutionResultsChannelsLast`), and without
    /// dilation; the kernel must be a multiple of the stride. `KernelPath.phases` can override
    /// the rule (`always`: as with `pays: false`).
    static func backwardDataAsPhases(_ g: ConvGeometry, pays: Bool = true, layouts: ConvStorage) -> BackwardDataPhases? {
        let mode = pays ? KernelPath.phases.mode : .always
        guard mode != .never, ComputePrecision.current == .bf16, layouts.kernelChannelsLast, layouts.input == .channelsLast,
              g.dilation == [1, 1], !g.isFullyConnected, mode == .always || g.backwardDataPhasesPay,
              let rows = BackwardDataPhases.axis(dx: g.input[2], dy: g.output[2], kernel: g.weight[2],
                                                 stride: g.stride[0], padding: g.padding[0]),
              let columns = BackwardDataPhases.axis(dx: g.input[3], dy: g.output[3], kernel: g.weight[3],
                                                    stride: g.stride[1], padding: g.padding[1])
        else { return nil }
        if mode == .rule {
            guard let ordinary = try? backwardData(g, layouts: layouts), !ordinary.implementation.contains("_amx") else { return nil }
        }
        let (n, o, c) = (g.input[0], g.weight[0], g.weight[1])
        let taps = [g.weight[2] / g.stride[0], g.weight[3] / g.stride[1]]
        var phases: [BackwardDataPhases.Phase] = []
        for (a, row) in rows.enumerated() {
            for (b, column) in columns.enumerated() {
                let size = [row.count, column.count]
                let key = PrimitiveKey(kind: .convBackwardDataPhase, values: g.keyValues + layouts.keyValues + [a, b],
                                       precision: .bf16, detail: g.detail + layouts.detail + " phase (\(a), \(b))")
                let made = try? PrimitiveCache.shared.primitive(for: key, threads: g.flops < Runtime.singleThreadFLOPs ? 1 : nil) {
                    let filters = [c, o, taps[0], taps[1]], result = [n, c] + size
                    var src = try DNNLContext.channelsLastDesc(g.output, type: dnnl_bf16)
                    var weights = try DNNLContext.anyDesc(filters, type: dnnl_bf16)
                    var dst = try DNNLContext.channelsLastDesc(result)
                    var desc = dnnl_convolution_desc_t()
                    let left = [Int64(row.left), Int64(column.left)], right = [Int64(row.right), Int64(column.right)]
                    try DNNLContext.check(
                        dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct,
                                                           &src, &weights, nil, &dst, [1, 1], left, right),
                        "convolution_forward_desc_init(backward data phase (\(a), \(b)) of \(g.detail))")
                    let pd = try createDescriptor(&desc, hint: nil, what: "conv backward data phase (\(a), \(b)) \(g.detail)")
                    return try DNNLPrimitive(descriptor: pd, arguments: [
                        (DNNL_ARG_SRC, try DNNLContext.layoutDesc(g.output, layouts.output), false),
                        (DNNL_ARG_WEIGHTS, try DNNLContext.plainDesc(filters, type: dnnl_bf16), false),
                        (DNNL_ARG_DST, try DNNLContext.channelsLastDesc(result), true),
                    ])
                }
                // A phase oneDNN refuses, or gives only a reference loop nest: the ordinary kernel.
                guard let made, !made.implementation.hasPrefix("ref:") else { return nil }
                let flops = 2 * Double(n * c * size[0] * size[1] * o * taps[0] * taps[1])
                phases.append(.init(row: a, column: b, size: size, primitive: made, flops: flops))
            }
        }
        return BackwardDataPhases(geometry: g, phases: phases, taps: taps)
    }
}

extension ConvolutionKernels {
    /// dx = conv^T(dy, w) by `phases` (`ConvolutionPrimitives.backwardDataAsPhases`), stored
    /// channels last. dy is read as it is stored, from its bf16 copy in the kernels' layout where
    /// one is given (`prepared.output`) or kept; the copy read is returned in the output role, for
    /// the weight gradient to read next, as the ordinary kernel's is.
    static func phasedBackwardData(
        _ dy: Tensor, _ w: Tensor, _ phases: BackwardDataPhases, prepared: ConvCopies = ConvCopies()
    ) throws -> (Tensor, ConvCopies) {
        let g = phases.geometry
        let label = "conv.bwd_data " + g.profileName + " phases"
        let dys = dy.storedAsIs
        let subKernels = try phases.subKernels(w)
        let dx = Tensor(uninitializedChannelsLast: g.input)
        // dy in the kernels' layout (bf16 nhwc, the same for every phase): the copy given, one
        // kept on dy, or the one the first phase makes.
        var dyCopy: LayoutCopy?
        var sources: [Int32: LayoutCopy] = [:]
        if let chosen = phases.phases[0].primitive.chosenLayout(DNNL_ARG_SRC) {
            dyCopy = prepared.output.flatMap { $0.matches(chosen) ? $0 : nil } ?? dys.layoutCopies?.copy(matching: chosen)
            if dyCopy == nil, let other = dys.layoutCopies?.copy(ofTypeOf: chosen) { sources[DNNL_ARG_SRC] = other }
        }
        let (n, c, o) = (g.input[0], g.input[1], g.weight[0])
        let perPhase = c * o * phases.taps[0] * phases.taps[1]
        let kernels = UnsafeMutableRawPointer(subKernels.storage.pointer).assumingMemoryBound(to: UInt16.self)
        for (q, phase) in phases.phases.enumerated() {
            let out = Storage(count: n * c * phase.size[0] * phase.size[1])
            let weights = UnsafeMutableRawPointer(kernels + q * perPhase).assumingMemoryBound(to: Float.self)
            var ready: [Int32: LayoutCopy] = [:]
            if let dyCopy { ready[DNNL_ARG_SRC] = dyCopy }
            if !subKernels.parts.isEmpty { ready[DNNL_ARG_WEIGHTS] = subKernels.parts[q] }
            let made = try withExtendedLifetime((dys, subKernels)) {
                try phase.primitive.execute([DNNL_ARG_SRC: dys.data, DNNL_ARG_WEIGHTS: weights, DNNL_ARG_DST: out.pointer],
                                            prepared: ready, sources: dyCopy == nil ? sources : [:], label: label, flops: phase.flops)
            }
            if dyCopy == nil { dyCopy = made[DNNL_ARG_SRC] }
            Profiler.measure("conv.bwd_data phases interleave") { interleave(out.pointer, phase, into: dx, g) }
        }
        if let dyCopy { dys.layoutCopies?.add(dyCopy) }
        return (dx, ConvCopies(output: dyCopy))
    }

    /// Writes a phase's rows [N, PH, PW, C] into dx stored channels last, at rows
    /// `row + stride[0] i` and columns `column + stride[1] j`.
    private static func interleave(_ source: UnsafeMutablePointer<Float>, _ phase: BackwardDataPhases.Phase, into dx: Tensor, _ g: ConvGeometry) {
        let (n, c, h, w) = (g.input[0], g.input[1], g.input[2], g.input[3])
        let (ph, pw) = (phase.size[0], phase.size[1])
        let (sh, sw) = (g.stride[0], g.stride[1])
        let destination = dx.data
        ParallelLoop.chunks(n, bytes: n * ph * pw * c * 8) { images in
            for image in images {
                for i in 0..<ph {
                    for j in 0..<pw {
                        let from = source + ((image * ph + i) * pw + j) * c
                        let to = destination + ((image * h + phase.row + sh * i) * w + phase.column + sw * j) * c
                        to.update(from: from, count: c)
                    }
                }
            }
        }
    }
}
