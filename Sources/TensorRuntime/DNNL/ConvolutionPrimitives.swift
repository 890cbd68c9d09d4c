import CDNNL

/// Everything that fixes a 2-D convolution's arithmetic, from the convolution's point of view:
/// `input` is convolved with `weight` into `output`.
///
/// A transposed convolution is the same geometry read backwards (its input is `output`, its
/// result is `input`), so the three kernels below serve conv2d, convTranspose2d and all their
/// gradients.
struct ConvGeometry: Hashable, Sendable {
    /// [N, C, H, W]
    let input: [Int]
    /// [O, C, KH, KW]
    let weight: [Int]
    /// [N, O, OH, OW]
    let output: [Int]
    let stride: [Int]
    let padding: [Int]
    /// 1 means no dilation (PyTorch's convention; oneDNN counts from 0).
    let dilation: [Int]

    var keyValues: [Int] { input + weight + output + stride + padding + dilation }

    var detail: String {
        "x \(describe(input)) w \(describe(weight)) y \(describe(output)) stride \(describe(stride)) "
            + "padding \(describe(padding)) dilation \(describe(dilation))"
    }

    /// Strides, dilations (0-based) and left/right padding in oneDNN's form.
    ///
    /// Right padding equals left padding: oneDNN checks `(H - extent + 2p) / s + 1 == OH` with
    /// integer division, so rows a strided window never reaches need no special padding.
    var dnnlParameters: (strides: [Int64], dilates: [Int64], left: [Int64], right: [Int64]) {
        (stride.map(Int64.init), dilation.map { Int64($0 - 1) }, padding.map(Int64.init), padding.map(Int64.init))
    }

    /// A short description for the profiler: `64x1x32x32 -> 64x64x16x16 k4 s2`.
    var profileName: String {
        func dims(_ d: [Int]) -> String { d.map(String.init).joined(separator: "x") }
        return "\(dims(input)) -> \(dims(output)) k\(weight[2]) s\(stride[0])"
    }

    /// Multiply-adds of one forward pass, times two.
    var flops: Double {
        2 * Double(output.reduce(1, *)) * Double(weight[1] * weight[2] * weight[3])
    }
}

/// oneDNN primitives for the three convolution kernels, created on first use and cached.
enum ConvolutionPrimitives {
    /// y = conv(x, w) (+ b).
    static func forward(_ g: ConvGeometry, bias: Bool) throws -> DNNLPrimitive {
        let key = PrimitiveKey(kind: .convForward, values: g.keyValues + [bias ? 1 : 0],
                               detail: g.detail + (bias ? " bias" : ""))
        return try PrimitiveCache.shared.primitive(for: key, threads: g.flops < Runtime.singleThreadFLOPs ? 1 : nil) {
            let pd = try forwardDescriptor(g, bias: bias)
            var args: [(Int32, dnnl_memory_desc_t, Bool)] = [
                (DNNL_ARG_SRC, try DNNLContext.plainDesc(g.input), false),
                (DNNL_ARG_WEIGHTS, try DNNLContext.plainDesc(g.weight), false),
                (DNNL_ARG_DST, try DNNLContext.plainDesc(g.output), true),
            ]
            if bias { args.append((DNNL_ARG_BIAS, try DNNLContext.plainDesc([g.weight[0]]), false)) }
            return try DNNLPrimitive(descriptor: pd, arguments: args)
        }
    }

    /// dx = conv^T(dy, w): the gradient of conv's input, and a transposed convolution's forward.
    static func backwardData(_ g: ConvGeometry) throws -> DNNLPrimitive {
        let key = PrimitiveKey(kind: .convBackwardData, values: g.keyValues, detail: g.detail)
        return try PrimitiveCache.shared.primitive(for: key, threads: g.flops < Runtime.singleThreadFLOPs ? 1 : nil) {
            let hint = try forwardDescriptor(g, bias: false)
            defer { dnnl_primitive_desc_destroy(hint) }
            var diffSrc = try DNNLContext.anyDesc(g.input)
            var weights = try DNNLContext.anyDesc(g.weight)
            var diffDst = try DNNLContext.anyDesc(g.output)
            let p = g.dnnlParameters
            var desc = dnnl_convolution_desc_t()
            try DNNLContext.check(
                dnnl_dilated_convolution_backward_data_desc_init(
                    &desc, dnnl_convolution_direct, &diffSrc, &weights, &diffDst, p.strides, p.dilates, p.left, p.right),
                "convolution_backward_data_desc_init(\(g.detail))")
            let pd = try createDescriptor(&desc, hint: hint, what: "conv backward data \(g.detail)")
            return try DNNLPrimitive(descriptor: pd, arguments: [
                (DNNL_ARG_DIFF_DST, try DNNLContext.plainDesc(g.output), false),
                (DNNL_ARG_WEIGHTS, try DNNLContext.plainDesc(g.weight), false),
                (DNNL_ARG_DIFF_SRC, try DNNLContext.plainDesc(g.input), true),
            ])
        }
    }

    /// dw = sum over the batch of x correlated with dy: the gradient of conv's weight.
    static func backwardWeights(_ g: ConvGeometry) throws -> DNNLPrimitive {
        let key = PrimitiveKey(kind: .convBackwardWeights, values: g.keyValues, detail: g.detail)
        return try PrimitiveCache.shared.primitive(for: key, threads: g.flops < Runtime.singleThreadFLOPs ? 1 : nil) {
            let hint = try forwardDescriptor(g, bias: false)
            defer { dnnl_primitive_desc_destroy(hint) }
            var src = try DNNLContext.anyDesc(g.input)
            var diffWeights = try DNNLContext.anyDesc(g.weight)
            var diffDst = try DNNLContext.anyDesc(g.output)
            let p = g.dnnlParameters
            var desc = dnnl_convolution_desc_t()
            try DNNLContext.check(
                dnnl_dilated_convolution_backward_weights_desc_init(
                    &desc, dnnl_convolution_direct, &src, &diffWeights, nil, &diffDst,
                    p.strides, p.dilates, p.left, p.right),
                "convolution_backward_weights_desc_init(\(g.detail))")
            let pd = try createDescriptor(&desc, hint: hint, what: "conv backward weights \(g.detail)")
            return try DNNLPrimitive(descriptor: pd, arguments: [
                (DNNL_ARG_SRC, try DNNLContext.plainDesc(g.input), false),
                (DNNL_ARG_DIFF_DST, try DNNLContext.plainDesc(g.output), false),
                (DNNL_ARG_DIFF_WEIGHTS, try DNNLContext.plainDesc(g.weight), true),
            ])
        }
    }

    /// A forward-training descriptor with every layout left to oneDNN; also the hint that the
    /// backward descriptors need.
    static func forwardDescriptor(_ g: ConvGeometry, bias: Bool) throws -> dnnl_primitive_desc_t {
        var src = try DNNLContext.anyDesc(g.input)
        var weights = try DNNLContext.anyDesc(g.weight)
        var dst = try DNNLContext.anyDesc(g.output)
        var biasDesc = try DNNLContext.anyDesc([g.weight[0]])
        let p = g.dnnlParameters
        var desc = dnnl_convolution_desc_t()
        let status = withUnsafePointer(to: &biasDesc) { b in
            dnnl_dilated_convolution_forward_desc_init(
                &desc, dnnl_forward_training, dnnl_convolution_direct, &src, &weights, bias ? b : nil, &dst,
                p.strides, p.dilates, p.left, p.right)
        }
        try DNNLContext.check(status, "convolution_forward_desc_init(\(g.detail))")
        return try createDescriptor(&desc, hint: nil, what: "conv forward \(g.detail)")
    }

    static func createDescriptor(
        _ desc: UnsafeMutablePointer<dnnl_convolution_desc_t>, hint: dnnl_primitive_desc_t?, what: String
    ) throws -> dnnl_primitive_desc_t {
        let attr = try DNNLContext.makeAttributes()
        defer { dnnl_primitive_attr_destroy(attr) }
        var pd: dnnl_primitive_desc_t?
        try DNNLContext.check(dnnl_primitive_desc_create(&pd, desc, attr, DNNLContext.engine, hint),
                              "primitive_desc_create(\(what))")
        return pd!
    }
}

/// Copies of a convolution's operands in the layouts its kernels chose, by role: `input` is x
/// (SRC, or DIFF_SRC), `weight` the weights, `output` y or its gradient (DST, or DIFF_DST). The
/// three kernels give each role the same argument, so a copy made by one can feed another.
struct ConvCopies {
    var input: LayoutCopy?
    var weight: LayoutCopy?
    var output: LayoutCopy?
}

/// Runs the convolution kernels on tensors, without recording anything for autograd.
///
/// Each kernel accepts operands already in a kernel layout (`prepared`) and returns the copies
/// it made, so that a backward pass reorders each tensor once rather than once per kernel.
///
/// A convolution whose window covers the whole (unpadded) input and gives a 1x1 output (the
/// first layer of a DCGAN generator, the last of its discriminator) is a matrix product: it runs
/// as a plain-layout matmul, with no reorders at all.
enum ConvolutionKernels {
    static func forward(
        _ x: Tensor, _ w: Tensor, _ b: Tensor?, _ g: ConvGeometry, prepared: ConvCopies = ConvCopies()
    ) throws -> (Tensor, ConvCopies) {
        let label = "conv.fwd " + g.profileName
        if g.isFullyConnected {
            // y[n, o] = sum over (c, kh, kw) of x[n, c, kh, kw] w[o, c, kh, kw]: X W^T (+ b).
            let mm = MatMulGeometry(batch: nil, m: g.input[0], k: g.patch, n: g.weight[0],
                                    transposeA: false, transposeB: true, bias: b != nil)
            let y = try Profiler.measure(label, flops: g.flops) {
                try MatMulPrimitives.run(g.matrix(x, rows: g.input[0]), g.matrix(w, rows: g.weight[0]), b, mm)
            }
            return (Tensor(storage: y.storage, shape: g.output), ConvCopies())
        }
        let primitive = try ConvolutionPrimitives.forward(g, bias: b != nil)
        let xc = x.contiguousData(), wc = w.contiguousData(), bc = b?.contiguousData()
        let out = Tensor(uninitialized: g.output)
        var buffers = [DNNL_ARG_SRC: xc.data, DNNL_ARG_WEIGHTS: wc.data, DNNL_ARG_DST: out.data]
        if let bc { buffers[DNNL_ARG_BIAS] = bc.data }
        var ready: [Int32: LayoutCopy] = [:]
        if let c = prepared.input { ready[DNNL_ARG_SRC] = c }
        if let c = prepared.weight { ready[DNNL_ARG_WEIGHTS] = c }
        let made = try Profiler.measure(label, flops: g.flops) {
            try withExtendedLifetime((xc, wc, bc)) {
                try primitive.execute(buffers, prepared: ready, label: label, flops: g.flops)
            }
        }
        return (out, ConvCopies(input: made[DNNL_ARG_SRC], weight: made[DNNL_ARG_WEIGHTS]))
    }

    static func backwardData(
        _ dy: Tensor, _ w: Tensor, _ g: ConvGeometry, prepared: ConvCopies = ConvCopies()
    ) throws -> (Tensor, ConvCopies) {
        let label = "conv.bwd_data " + g.profileName
        if g.isFullyConnected {
            // dx[n, (c, kh, kw)] = sum over o of dy[n, o] w[o, (c, kh, kw)]: dY W.
            let mm = MatMulGeometry(batch: nil, m: g.input[0], k: g.weight[0], n: g.patch,
                                    transposeA: false, transposeB: false, bias: false)
            let dx = try Profiler.measure(label, flops: g.flops) {
                try MatMulPrimitives.run(g.matrix(dy, rows: g.input[0]), g.matrix(w, rows: g.weight[0]), nil, mm)
            }
            return (Tensor(storage: dx.storage, shape: g.input), ConvCopies())
        }
        let primitive = try ConvolutionPrimitives.backwardData(g)
        let dyc = dy.contiguousData(), wc = w.contiguousData()
        let out = Tensor(uninitialized: g.input)
        var ready: [Int32: LayoutCopy] = [:]
        if let c = prepared.output { ready[DNNL_ARG_DIFF_DST] = c }
        if let c = prepared.weight { ready[DNNL_ARG_WEIGHTS] = c }
        let made = try Profiler.measure(label, flops: g.flops) {
            try withExtendedLifetime((dyc, wc)) {
                try primitive.execute([DNNL_ARG_DIFF_DST: dyc.data, DNNL_ARG_WEIGHTS: wc.data, DNNL_ARG_DIFF_SRC: out.data],
                                      prepared: ready, label: label, flops: g.flops)
            }
        }
        return (out, ConvCopies(weight: made[DNNL_ARG_WEIGHTS], output: made[DNNL_ARG_DIFF_DST]))
    }

    static func backwardWeights(
        _ x: Tensor, _ dy: Tensor, _ g: ConvGeometry, prepared: ConvCopies = ConvCopies()
    ) throws -> (Tensor, ConvCopies) {
        let label = "conv.bwd_weights " + g.profileName
        if g.isFullyConnected {
            // dw[o, (c, kh, kw)] = sum over n of dy[n, o] x[n, (c, kh, kw)]: dY^T X.
            let mm = MatMulGeometry(batch: nil, m: g.weight[0], k: g.input[0], n: g.patch,
                                    transposeA: true, transposeB: false, bias: false)
            let dw = try Profiler.measure(label, flops: g.flops) {
                try MatMulPrimitives.run(g.matrix(dy, rows: g.input[0]), g.matrix(x, rows: g.input[0]), nil, mm)
            }
            return (Tensor(storage: dw.storage, shape: g.weight), ConvCopies())
        }
        let primitive = try ConvolutionPrimitives.backwardWeights(g)
        let xc = x.contiguousData(), dyc = dy.contiguousData()
        let out = Tensor(uninitialized: g.weight)
        var ready: [Int32: LayoutCopy] = [:]
        if let c = prepared.input { ready[DNNL_ARG_SRC] = c }
        if let c = prepared.output { ready[DNNL_ARG_DIFF_DST] = c }
        let made = try Profiler.measure(label, flops: g.flops) {
            try withExtendedLifetime((xc, dyc)) {
                try primitive.execute([DNNL_ARG_SRC: xc.data, DNNL_ARG_DIFF_DST: dyc.data, DNNL_ARG_DIFF_WEIGHTS: out.data],
                                      prepared: ready, label: label, flops: g.flops)
            }
        }
        return (out, ConvCopies(input: made[DNNL_ARG_SRC], output: made[DNNL_ARG_DIFF_DST]))
    }
}

extension ConvGeometry {
    /// Whether the window covers the whole unpadded input, leaving a 1x1 output: then the
    /// convolution is the matrix product of the flattened input and the flattened weight.
    var isFullyConnected: Bool {
        output[2] == 1 && output[3] == 1 && padding == [0, 0] && dilation == [1, 1]
            && weight[2] == input[2] && weight[3] == input[3]
    }

    /// C KH KW, the length of one flattened window.
    var patch: Int { weight[1] * weight[2] * weight[3] }

    /// `t` as a contiguous [rows, count / rows] matrix (no copy when already contiguous).
    func matrix(_ t: Tensor, rows: Int) -> Tensor {
        let c = t.contiguousData()
        return Tensor(storage: c.storage, shape: [rows, c.count / rows], offset: c.offset)
    }
}
