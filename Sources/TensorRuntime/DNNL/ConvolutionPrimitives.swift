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
///
/// Each computes in the calling thread's `ComputePrecision`: in bf16 the operands a kernel reads
/// are bf16 in the layouts it chose (rounded as they are reordered there), and the one it writes
/// is f32.
enum ConvolutionPrimitives {
    /// y = conv(x, w) (+ b), or with an `activation` that activation of it in one pass, a oneDNN
    /// post-op (`ConvActivation`).
    ///
    /// x and y are in the `layouts` given (`ActivationLayout`).
    /// (`layouts.output` is y's), and with `layouts.kernelChannelsLast` the kernel itself computes
    /// in `nhwc` (`ConvGeometry.prefersChannelsLast`).
    static func forward(
        _ g: ConvGeometry, bias: Bool, activation: ConvActivation? = nil, layouts: ConvStorage = ConvStorage()
    ) throws -> DNNLPrimitive {
        let precision = ComputePrecision.current
        let key = PrimitiveKey(kind: .convForward, values: g.keyValues + [bias ? 1 : 0] + (activation?.keyValues ?? [0, 0])
                                   + layouts.keyValues,
                               precision: precision,
                               detail: g.detail + (bias ? " bias" : "") + (activation.map { " " + $0.name } ?? "") + layouts.detail)
        return try PrimitiveCache.shared.primitive(for: key, threads: g.flops < Runtime.singleThreadFLOPs ? 1 : nil) {
            try precision.primitive { precision in
                let pd = try forwardDescriptor(g, bias: bias, precision: precision, activation: activation,
                                               channelsLast: layouts.kernelChannelsLast && precision == .bf16)
                var args: [(Int32, dnnl_memory_desc_t, Bool)] = [
                    (DNNL_ARG_SRC, try DNNLContext.layoutDesc(g.input, layouts.input), false),
                    (DNNL_ARG_WEIGHTS, try DNNLContext.plainDesc(g.weight), false),
                    (DNNL_ARG_DST, try DNNLContext.layoutDesc(g.output, layouts.output), true),
                ]
                if bias { args.append((DNNL_ARG_BIAS, try DNNLContext.plainDesc([g.weight[0]]), false)) }
                return try DNNLPrimitive(descriptor: pd, arguments: args)
            }
        }
    }

    /// dx = conv^T(dy, w): the gradient of conv's input, and a transposed convolution's forward.
    ///
    /// `layouts` are those of the tensors in the input (dx) and output (dy) roles; with
    /// `kernelChannelsLast` the kernel computes in `nhwc`.
    static func backwardData(
        _ g: ConvGeometry, layouts: ConvStorage = ConvStorage()
    ) throws -> DNNLPrimitive {
        try backward(g, kind: .convBackwardData, what: "data", layouts: layouts, arguments: [
            (DNNL_ARG_DIFF_DST, .output, false), (DNNL_ARG_WEIGHTS, .weight, false), (DNNL_ARG_DIFF_SRC, .input, true),
        ]) { desc, input, weight, output, p in
            dnnl_dilated_convolution_backward_data_desc_init(
                desc, dnnl_convolution_direct, input, weight, output, p.strides, p.dilates, p.left, p.right)
        }
    }

    /// dw = sum over the batch of x correlated with dy: the gradient of conv's weight.
    static func backwardWeights(
        _ g: ConvGeometry, layouts: ConvStorage = ConvStorage()
    ) throws -> DNNLPrimitive {
        try backward(g, kind: .convBackwardWeights, what: "weights", layouts: layouts, arguments: [
            (DNNL_ARG_SRC, .input, false), (DNNL_ARG_DIFF_DST, .output, false), (DNNL_ARG_DIFF_WEIGHTS, .weight, true),
        ]) { desc, input, weight, output, p in
            dnnl_dilated_convolution_backward_weights_desc_init(
                desc, dnnl_convolution_direct, input, weight, nil, output, p.strides, p.dilates, p.left, p.right)
        }
    }

    /// dw computed as a forward convolution with the batch and channel axes swapped, where that
    /// is faster than oneDNN's backward-weights kernel (`pays`), or nil.
    ///
    /// dw[o, c, i, j] = sum over (n, p, q) of x[n, c, s p + d i - l, s q + d j - l] dy[n, o, p, q]
    /// (s the stride, d the dilation, l the left padding) is the forward convolution of the
    /// "images" x^T [C, N, H, W] (one per input channel, with the batch as channels) with the
    /// "filters" dy^T [O, N, OH, OW] (spread by dilation s) at stride d, giving [C, O, KH, KW]:
    /// dw with its first two axes swapped. All three are the plain tensors read or written through
    /// strides, so the transposition happens in the reorders to and from the kernel's layouts.
    /// The right padding is what makes the output exactly KH x KW; where that would be negative
    /// (rows the strided window never reaches), the ordinary kernel runs.
    ///
    /// It pays in bf16 for strided convolutions with enough work per element reordered
    /// (`ConvGeometry.swappedWeightGradientPays`): oneDNN 2.6's bf16 backward-weights kernels
    /// reach 270-300 GFLOP/s at DCGAN's stride-2 layers on AVX512_BF16 (Zen 4), where the
    /// swapped forward kernel reaches 450-510. With `pays: false` (tests) it runs wherever it
    /// is exact, in either precision.
    /// `layouts` gives how x (input) and dy (output) are stored.
    /// `KernelPath.swapped` can override the rule (`always`: as with `pays: false`).
    static func weightGradientAsForward(_ g: ConvGeometry, pays: Bool = true, layouts: ConvStorage = ConvStorage()) -> DNNLPrimitive? {
        let precision = ComputePrecision.current
        guard !g.isFullyConnected, !pays || KernelPath.swapped.chosen(rule: precision == .bf16 && g.swappedWeightGradientPays)
        else { return nil }
        let (n, c, h, w) = (g.input[0], g.input[1], g.input[2], g.input[3])
        let (o, kh, kw) = (g.weight[0], g.weight[2], g.weight[3])
        let (oh, ow) = (g.output[2], g.output[3])
        let right = (0..<2).map { axis in
            let extent = (g.output[2 + axis] - 1) * g.stride[axis] + 1
            return (g.weight[2 + axis] - 1) * g.dilation[axis] + extent - g.input[2 + axis] - g.padding[axis]
        }
        guard right.allSatisfy({ $0 >= 0 }) else { return nil }
        let key = PrimitiveKey(kind: .convBackwardWeightsAsForward, values: g.keyValues + layouts.keyValues, precision: precision,
                               detail: g.detail + " as a forward convolution" + layouts.detail)
        // A geometry oneDNN refuses, or gives only a reference loop nest, takes the ordinary kernel.
        let made = try? PrimitiveCache.shared.primitive(for: key, threads: g.flops < Runtime.singleThreadFLOPs ? 1 : nil) {
            let images = [c, n, h, w], filters = [o, n, oh, ow], result = [c, o, kh, kw]
            // From x stored channels last, the transposing reorder into oneDNN's 16-blocked layout
            // is twice as fast as into `nhwc`, which `brgconv` (its first choice) takes: 0.34
            // against 0.70 ms for DCGAN's [64, 64, 16, 16] in bf16 on Zen 4, and `jit_bf16` on
            // blocked layouts ran the product itself in 2.02 against 2.17 ms.
            let blocked = layouts.input == .channelsLast && precision == .bf16
            func descriptor(blocked: Bool) throws -> dnnl_primitive_desc_t {
                var src = blocked ? try DNNLContext.tagDesc(images, type: precision.sourceType, tag: dnnl_aBcd16b)
                    : try DNNLContext.anyDesc(images, type: precision.sourceType)
                var weights = try DNNLContext.anyDesc(filters, type: precision.sourceType)
                var dst = blocked ? try DNNLContext.tagDesc(result, type: dnnl_f32, tag: dnnl_aBcd16b) : try DNNLContext.anyDesc(result)
                var desc = dnnl_convolution_desc_t()
                let strides = g.dilation.map(Int64.init), dilates = g.stride.map { Int64($0 - 1) }
                let left = g.padding.map(Int64.init), rightPadding = right.map(Int64.init)
                try DNNLContext.check(
                    dnnl_dilated_convolution_forward_desc_init(
                        &desc, dnnl_forward_inference, dnnl_convolution_direct, &src, &weights, nil, &dst,
                        strides, dilates, left, rightPadding),
                    "convolution_forward_desc_init(weight gradient of \(g.detail))")
                return try createDescriptor(&desc, hint: nil, what: "conv weight gradient as forward \(g.detail)",
                                            preferring: blocked ? .jitBF16 : nil)
            }
            // The blocked layouts only where oneDNN has a real kernel for them.
            var tried = blocked ? try? descriptor(blocked: true) : nil
            if let pd = tried, DNNLPrimitive.implementationName(pd).hasPrefix("ref:") {
                dnnl_primitive_desc_destroy(pd)
                tried = nil
            }
            let pd = try tried ?? descriptor(blocked: false)
            // x^T and dy^T: the stored tensors' strides with the first two exchanged.
            func swapped(_ dims: [Int], _ layout: ActivationLayout) -> [Int] {
                let s = layout == .channelsLast ? Tensor.channelsLastStrides(dims) : Tensor.contiguousStrides(dims)
                return [s[1], s[0], s[2], s[3]]
            }
            return try DNNLPrimitive(descriptor: pd, arguments: [
                (DNNL_ARG_SRC, try DNNLContext.plainDesc(images, strides: swapped(g.input, layouts.input)), false),
                (DNNL_ARG_WEIGHTS, try DNNLContext.plainDesc(filters, strides: swapped(g.output, layouts.output)), false),
                (DNNL_ARG_DST, try DNNLContext.plainDesc(result, strides: [kh * kw, c * kh * kw, kw, 1]), true),
            ])
        }
        return made?.implementation.hasPrefix("ref:") == false ? made : nil
    }

    /// A backward kernel (`what`: data or weights): its descriptor, with every layout left to
    /// oneDNN and the forward descriptor as the hint, made by `initialize` from the input,
    /// weight and output descriptors; and its plain-layout `arguments` (oneDNN argument, role,
    /// whether it is written).
    private static func backward(
        _ g: ConvGeometry, kind: PrimitiveKind, what: String, layouts: ConvStorage, arguments: [(Int32, ConvRole, Bool)],
        initialize: (
            _ desc: UnsafeMutablePointer<dnnl_convolution_desc_t>, _ input: UnsafePointer<dnnl_memory_desc_t>,
            _ weight: UnsafePointer<dnnl_memory_desc_t>, _ output: UnsafePointer<dnnl_memory_desc_t>,
            _ parameters: (strides: [Int64], dilates: [Int64], left: [Int64], right: [Int64])
        ) -> dnnl_status_t
    ) throws -> DNNLPrimitive {
        let precision = ComputePrecision.current
        // Whether oneDNN's GEMM kernel is preferred is part of the key: `KernelPath.gemm` can
        // change it for the same geometry and layouts.
        let gemm = kind == .convBackwardData && g.prefersGEMMBackwardData
        let key = PrimitiveKey(kind: kind, values: g.keyValues + layouts.keyValues + (gemm ? [1] : []), precision: precision,
                               detail: g.detail + layouts.detail + (gemm ? " gemm" : ""))
        return try PrimitiveCache.shared.primitive(for: key, threads: g.flops < Runtime.singleThreadFLOPs ? 1 : nil) {
            try precision.primitive { precision in
                let channelsLast = layouts.kernelChannelsLast && precision == .bf16
                let hint = try forwardDescriptor(g, bias: false, precision: precision, channelsLast: channelsLast)
                defer { dnnl_primitive_desc_destroy(hint) }
                // The kernel reads its sources in `precision` and writes its result in f32.
                func desc(_ role: ConvRole) throws -> dnnl_memory_desc_t {
                    let written = arguments.contains { $0.1 == role && $0.2 }
                    let type = written ? dnnl_f32 : precision.sourceType
                    return role != .weight && channelsLast
                        ? try DNNLContext.channelsLastDesc(g.dims(role), type: type)
                        : try DNNLContext.anyDesc(g.dims(role), type: type)
                }
                var input = try desc(.input)
                var weight = try desc(.weight)
                var output = try desc(.output)
                var desc = dnnl_convolution_desc_t()
                try DNNLContext.check(initialize(&desc, &input, &weight, &output, g.dnnlParameters),
                                      "convolution_backward_\(what)_desc_init(\(g.detail))")
                let pd = try createDescriptor(&desc, hint: hint, what: "conv backward \(what) \(g.detail)",
                                              preferring: gemm ? .gemm : nil)
                return try DNNLPrimitive(descriptor: pd, arguments: arguments.map { argument, role, written in
                    (argument, try DNNLContext.layoutDesc(g.dims(role), layouts[role]), written)
                })
            }
        }
    }

    /// A forward-training descriptor with every layout left to oneDNN, sources and weights in
    /// `precision` and the result (and bias) in f32; also the hint that the backward descriptors need.
    /// With an `activation`, that activation is a post-op, of an inference or a training forward.
    /// With `channelsLast`, the activations are `nhwc` instead.
    static func forwardDescriptor(
        _ g: ConvGeometry, bias: Bool, precision: ComputePrecision = .fp32, activation: ConvActivation? = nil,
        channelsLast: Bool = false
    ) throws -> dnnl_primitive_desc_t {
        var src = channelsLast ? try DNNLContext.channelsLastDesc(g.input, type: precision.sourceType)
            : try DNNLContext.anyDesc(g.input, type: precision.sourceType)
        var weights = try DNNLContext.anyDesc(g.weight, type: precision.sourceType)
        var dst = channelsLast ? try DNNLContext.channelsLastDesc(g.output) : try DNNLContext.anyDesc(g.output)
        var biasDesc = try DNNLContext.anyDesc([g.weight[0]])
        let p = g.dnnlParameters
        var desc = dnnl_convolution_desc_t()
        let status = withUnsafePointer(to: &biasDesc) { b in
            dnnl_dilated_convolution_forward_desc_init(
                &desc, activation?.training == false ? dnnl_forward_inference : dnnl_forward_training,
                dnnl_convolution_direct, &src, &weights,
                bias ? b : nil, &dst, p.strides, p.dilates, p.left, p.right)
        }
        try DNNLContext.check(status, "convolution_forward_desc_init(\(g.detail))")
        // Channels last, oneDNN 2.6 offers `brgconv` first; its `jit_bf16` kernel, the one the
        // backward kernels use, takes cheaper weight reorders (see `prefersChannelsLast`).
        return try createDescriptor(&desc, hint: nil, what: "conv forward \(g.detail)" + (activation.map { " " + $0.name } ?? ""),
                                    postOps: activation.map { [(dnnl_eltwise_relu, $0.slope)] } ?? [],
                                    preferring: channelsLast && precision == .bf16 ? .jitBF16 : nil)
    }

    /// oneDNN's first implementation for `desc`; with `preferring`, the one its `choice` takes
    /// (an AMX first choice stands against `jitBF16`), where oneDNN offers one (its first otherwise).
    static func createDescriptor(
        _ desc: UnsafeMutablePointer<dnnl_convolution_desc_t>, hint: dnnl_primitive_desc_t?, what: String,
        postOps: [(dnnl_alg_kind_t, Float)] = [], preferring: KernelPreference? = nil
    ) throws -> dnnl_primitive_desc_t {
        let attr = try DNNLContext.makeAttributes(eltwisePostOps: postOps)
        defer { dnnl_primitive_attr_destroy(attr) }
        if let preferring {
            var iterator: dnnl_primitive_desc_iterator_t?
            if dnnl_primitive_desc_iterator_create(&iterator, desc, attr, DNNLContext.engine, hint) == dnnl_success, let iterator {
                defer { dnnl_primitive_desc_iterator_destroy(iterator) }
                var candidates: [dnnl_primitive_desc_t] = []
                repeat {
                    guard let candidate = dnnl_primitive_desc_iterator_fetch(iterator) else { break }
                    candidates.append(candidate)
                } while dnnl_primitive_desc_iterator_next(iterator) == dnnl_success
                if let chosen = preferring.choice(candidates.map(DNNLPrimitive.implementationName)) {
                    for (i, candidate) in candidates.enumerated() where i != chosen { dnnl_primitive_desc_destroy(candidate) }
                    return candidates[chosen]
                }
                candidates.forEach { dnnl_primitive_desc_destroy($0) }
            }
        }
        var pd: dnnl_primitive_desc_t?
        try DNNLContext.check(dnnl_primitive_desc_create(&pd, desc, attr, DNNLContext.engine, hint),
                              "primitive_desc_create(\(what))")
        return pd!
    }
}

/// A oneDNN convolution implementation preferred to its first choice, as measured on Zen 4
/// (`ConvolutionPrimitives.createDescriptor`).
enum KernelPreference: String, Sendable {
    /// `jit_bf16`, over `brgconv`, for channels-last and blocked bf16 layouts (cheaper weight
    /// reorders, and faster on blocked layouts: see `forwardDescriptor`, `weightGradientAsForward`).
    case jitBF16 = "jit_bf16"
    /// oneDNN's GEMM-based kernel, for results of fewer than 16 channels, which the JIT kernels
    /// pad to a block of 16 (`ConvGeometry.prefersGEMMBackwardData`).
    case gemm = "x64:gemm"

    /// Which of oneDNN's implementations (`names`, in oneDNN's order, its first choice first) to
    /// take: the first whose name starts with this preference's, or nil where none does.
    ///
    /// Except that `jitBF16` yields to a first choice that runs on AMX (Sapphire Rapids' tile
    /// instructions). It was measured against `brgconv` on Zen 4, where both are AVX512_BF16
    /// kernels; on a CPU with AMX it would trade the tile kernels, which the bf16 goal there
    /// depends on, for the vector one. `gemm` does not yield: AMX's tiles pad a channel count
    /// below 16 too.
    func choice(_ names: [String]) -> Int? {
        if self == .jitBF16, let first = names.first, first.contains("_amx") { return 0 }
        return names.firstIndex { $0.hasPrefix(rawValue) }
    }
}

/// A ReLU or leaky ReLU that a forward convolution kernel applies to its result, as a oneDNN
/// eltwise post-op, in the same pass.
struct ConvActivation: Hashable, Sendable {
    /// The negative slope (0: a ReLU).
    let slope: Float
    /// A training forward, which backward kernels take as their hint, or an inference-only one.
    let training: Bool

    static let inferenceReLU = ConvActivation(slope: 0, training: false)

    var keyValues: [Int] { [training ? 2 : 1, Int(slope.bitPattern)] }
    var name: String { (slope == 0 ? "relu" : "leaky_relu(\(slope))") + (training ? "" : " inference") }

    /// The activation of z (`leakyReLUValue`).
    @inline(__always)
    func callAsFunction(_ z: Float) -> Float { leakyReLUValue(z, slope: slope) }
}

/// A convolution's three operands: x, the weights and y, whatever their direction (in a
/// backward kernel `output` is dy and `input` may be dx).
enum ConvRole {
    case input
    case weight
    case output
}

extension ConvGeometry {
    /// The shape of the operand in `role`.
    func dims(_ role: ConvRole) -> [Int] {
        switch role {
        case .input: input
        case .weight: weight
        case .output: output
        }
    }
}

/// How a convolution's activation operands are stored (`Tensor.storageLayout`): x or dx in
/// the input role, y or dy in the output role; and whether the kernels compute channels last.
struct ConvStorage: Hashable, Sendable {
    var input: ActivationLayout = .channelsFirst
    var output: ActivationLayout = .channelsFirst
    var kernelChannelsLast = false

    subscript(_ role: ConvRole) -> ActivationLayout {
        switch role {
        case .input: input
        case .output: output
        case .weight: .channelsFirst
        }
    }

    var keyValues: [Int] { [input == .channelsLast ? 1 : 0, output == .channelsLast ? 1 : 0, kernelChannelsLast ? 1 : 0] }

    var detail: String {
        (input == .channelsLast ? " x nhwc" : "") + (output == .channelsLast ? " y nhwc" : "")
            + (kernelChannelsLast ? " kernel nhwc" : "")
    }
}

/// Copies of a convolution's operands in the layouts its kernels chose, by role: `input` is x
/// (SRC, or DIFF_SRC), `weight` the weights, `output` y or its gradient (DST, or DIFF_DST). The
/// three kernels give each role the same argument, so a copy made by one can feed another.
struct ConvCopies {
    var input: LayoutCopy?
    var weight: LayoutCopy?
    var output: LayoutCopy?

    subscript(_ role: ConvRole) -> LayoutCopy? {
        get {
            switch role {
            case .input: input
            case .weight: weight
            case .output: output
            }
        }
        set {
            switch role {
            case .input: input = newValue
            case .weight: weight = newValue
            case .output: output = newValue
            }
        }
    }
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
    /// y = conv(x, w) (+ b); with an `activation`, that activation of y in the same pass. x and y
    /// are in the `layouts` given (`ActivationLayout`).
    ///
    /// Without `layouts` (training), x is read as it is stored (`Tensor.storageLayout`) and y is
    /// an [N, O, OH, OW] tensor, stored channels last where the kernel computes that way
    /// (`ConvGeometry.prefersChannelsLast`).
    static func forward(
        _ x: Tensor, _ w: Tensor, _ b: Tensor?, _ g: ConvGeometry, prepared: ConvCopies = ConvCopies(),
        activation: ConvActivation? = nil,
        layouts: (input: ActivationLayout, result: ActivationLayout)? = nil
    ) throws -> (Tensor, ConvCopies) {
        let label = "conv.fwd " + g.profileName + (activation.map { " " + $0.name } ?? "")
            + (layouts?.result == .channelsLast ? " nhwc" : "")
        if g.isFullyConnected && (layouts ?? (.channelsFirst, .channelsFirst)) == (.channelsFirst, .channelsFirst) {
            // y[n, o] = sum over (c, kh, kw) of x[n, c, kh, kw] w[o, c, kh, kw]: X W^T (+ b).
            let mm = MatMulGeometry(batch: nil, m: g.input[0], k: g.patch, n: g.weight[0],
                                    transposeA: false, transposeB: true, bias: b != nil)
            // x stored channels last is read in (kh, kw, c) order, with the weight permuted to match.
            let last = x.isChannelsLastDense
            let wm = last ? try g.channelsLastWeights(w) : g.matrix(w, rows: g.weight[0])
            let (y, copies) = try matrixProduct(label, g, mm, last ? g.channelsLastMatrix(x) : g.matrix(x, rows: g.input[0]),
                                                wm, b, into: .output)
            if let activation {
                let p = y.data
                for i in 0..<y.count { p[i] = activation(p[i]) }
            }
            return (y, copies)
        }
        if let layouts {
            var reads: [(Int32, ConvRole?, Tensor)] = [(DNNL_ARG_SRC, .input, x), (DNNL_ARG_WEIGHTS, .weight, w)]
            if let b { reads.append((DNNL_ARG_BIAS, nil, b)) }
            let storage = ConvStorage(input: layouts.input, output: layouts.result)
            return try run(ConvolutionPrimitives.forward(g, bias: b != nil, activation: activation, layouts: storage),
                           label, g, reads: reads, into: (DNNL_ARG_DST, .output), prepared: prepared,
                           keepResultCopy: activation?.training == false, resultShape: layouts.result.shape(g.output))
        }
        let xs = x.storedAsIs
        let storage = ConvStorage(input: xs.storageLayout!, output: g.resultLayout(.output), kernelChannelsLast: g.prefersChannelsLast())
        var reads: [(Int32, ConvRole?, Tensor)] = [(DNNL_ARG_SRC, .input, xs), (DNNL_ARG_WEIGHTS, .weight, w)]
        if let b { reads.append((DNNL_ARG_BIAS, nil, b)) }
        let primitive = try ConvolutionPrimitives.forward(g, bias: b != nil, activation: activation, layouts: storage)
        return try run(primitive, label, g, reads: reads, into: (DNNL_ARG_DST, .output), prepared: prepared,
                       keepResultCopy: activation?.training == false, resultLayout: storage.output)
    }

    static func backwardData(
        _ dy: Tensor, _ w: Tensor, _ g: ConvGeometry, prepared: ConvCopies = ConvCopies()
    ) throws -> (Tensor, ConvCopies) {
        let label = "conv.bwd_data " + g.profileName
        if g.isFullyConnected {
            // dx[n, (c, kh, kw)] = sum over o of dy[n, o] w[o, (c, kh, kw)]: dY W.
            let mm = MatMulGeometry(batch: nil, m: g.input[0], k: g.weight[0], n: g.patch,
                                    transposeA: false, transposeB: false, bias: false)
            // Where convolution results are stored channels last, dx is too: (kh, kw, c) order.
            let last = g.fullyConnectedChannelsLast
            let wm = last ? try g.channelsLastWeights(w) : g.matrix(w, rows: g.weight[0])
            return try matrixProduct(label, g, mm, g.matrix(dy, rows: g.input[0]), wm, nil, into: .input, channelsLast: last)
        }
        let dys = dy.storedAsIs
        let gemm = g.prefersGEMMBackwardData
        let storage = ConvStorage(input: g.resultLayout(.input), output: dys.storageLayout!,
                                  kernelChannelsLast: g.prefersChannelsLast() && !gemm)
        if let phases = ConvolutionPrimitives.backwardDataAsPhases(g, layouts: storage) {
            return try phasedBackwardData(dys, w, phases, prepared: prepared)
        }
        return try run(ConvolutionPrimitives.backwardData(g, layouts: storage), label, g,
                       reads: [(DNNL_ARG_DIFF_DST, .output, dys), (DNNL_ARG_WEIGHTS, .weight, w)],
                       into: (DNNL_ARG_DIFF_SRC, .input), prepared: prepared, resultLayout: storage.input)
    }

    static func backwardWeights(
        _ x: Tensor, _ dy: Tensor, _ g: ConvGeometry, prepared: ConvCopies = ConvCopies()
    ) throws -> (Tensor, ConvCopies) {
        let label = "conv.bwd_weights " + g.profileName
        let xs = x.storedAsIs, dys = dy.storedAsIs
        let storage = ConvStorage(input: xs.storageLayout!, output: dys.storageLayout!, kernelChannelsLast: g.prefersChannelsLast())
        if let swapped = ConvolutionPrimitives.weightGradientAsForward(g, layouts: storage) {
            return (try swappedWeightGradient(xs, dys, g, swapped, prepared: prepared), ConvCopies())
        }
        if g.isFullyConnected {
            // dw[o, (c, kh, kw)] = sum over n of dy[n, o] x[n, (c, kh, kw)]: dY^T X.
            let mm = MatMulGeometry(batch: nil, m: g.weight[0], k: g.input[0], n: g.patch,
                                    transposeA: true, transposeB: false, bias: false)
            guard xs.isChannelsLastDense else {
                return try matrixProduct(label, g, mm, g.matrix(dys, rows: g.input[0]), g.matrix(xs, rows: g.input[0]), nil, into: .weight)
            }
            // x stored channels last: dw in (o, kh, kw, c) order, permuted back.
            let (o, c, kh, kw) = (g.weight[0], g.weight[1], g.weight[2], g.weight[3])
            let product = try Profiler.measure(label, flops: g.flops) {
                try MatMulPrimitives.run(g.matrix(dys, rows: g.input[0]), g.channelsLastMatrix(xs), nil, mm)
            }
            return (try Tensor(storage: product.storage, shape: [o, kh, kw, c]).permuted([0, 3, 1, 2]).contiguousData(), ConvCopies())
        }
        return try run(ConvolutionPrimitives.backwardWeights(g, layouts: storage), label, g,
                       reads: [(DNNL_ARG_SRC, .input, xs), (DNNL_ARG_DIFF_DST, .output, dys)],
                       into: (DNNL_ARG_DIFF_WEIGHTS, .weight), prepared: prepared)
    }

    /// dw by `primitive`, a `ConvolutionPrimitives.weightGradientAsForward` of `g`, which reads
    /// x and dy and writes dw in their plain layouts through transposing strides. Where the
    /// other kernels made copies of x and dy in their layouts (`prepared`: in bf16, half the
    /// bytes of the plain tensors, and blocked by channels), the transposing reorders read those,
    /// seen with the batch and channel axes exchanged.
    static func swappedWeightGradient(
        _ x: Tensor, _ dy: Tensor, _ g: ConvGeometry, _ primitive: DNNLPrimitive, prepared: ConvCopies = ConvCopies()
    ) throws -> Tensor {
        let label = "conv.bwd_weights " + g.profileName + " swapped"
        let xs = x.storedAsIs, dys = dy.storedAsIs
        let out = Tensor(uninitialized: g.weight)
        var sources: [Int32: LayoutCopy] = [:]
        sources[DNNL_ARG_SRC] = prepared.input?.swappingAxes(0, 1)
        sources[DNNL_ARG_WEIGHTS] = prepared.output?.swappingAxes(0, 1)
        try Profiler.measure(label, flops: g.flops) {
            try withExtendedLifetime((xs, dys)) {
                _ = try primitive.execute([DNNL_ARG_SRC: xs.data, DNNL_ARG_WEIGHTS: dys.data, DNNL_ARG_DST: out.data],
                                          sources: sources, label: label, flops: g.flops)
            }
        }
        return out
    }

    /// Runs `primitive` on `reads` (oneDNN argument, role, tensor; a bias has no role) into a new
    /// tensor in the role `into`, with the `prepared` copies of the roles it reads; returns the
    /// copies it made of the operands it read, by role.
    ///
    /// An operand that keeps its layout copies (`Tensor.keepLayoutCopies()`) is read from its
    /// copy in the chosen layout when it has one, and keeps the copy made otherwise. With
    /// `keepResultCopy` the result keeps its copy in the kernel's layout too, for the next kernel.
    ///
    /// Activation operands are read as they are stored (the primitive was made for their
    /// `storageLayout`); the result is made with the shape `resultShape`, or stored in `resultLayout`.
    private static func run(
        _ primitive: DNNLPrimitive, _ label: String, _ g: ConvGeometry, reads: [(Int32, ConvRole?, Tensor)],
        into result: (argument: Int32, role: ConvRole), prepared: ConvCopies, keepResultCopy: Bool = false,
        resultShape: [Int]? = nil, resultLayout: ActivationLayout = .channelsFirst
    ) throws -> (Tensor, ConvCopies) {
        let operands = reads.map { ($0.0, $0.1, $0.1 == .weight || $0.1 == nil ? $0.2.contiguousData() : $0.2.storedAsIs, $0.2.layoutCopies) }
        let dims = resultShape ?? g.dims(result.role)
        let out = resultLayout == .channelsLast ? Tensor(uninitializedChannelsLast: dims) : Tensor(uninitialized: dims)
        var buffers = [result.argument: out.data]
        var ready: [Int32: LayoutCopy] = [:], sources: [Int32: LayoutCopy] = [:]
        for (argument, role, t, kept) in operands {
            buffers[argument] = t.data
            if let role, let c = prepared[role] {
                ready[argument] = c
            } else if let kept, let layout = primitive.chosenLayout(argument) {
                if let c = kept.copy(matching: layout) {
                    ready[argument] = c
                } else if let c = kept.copy(ofTypeOf: layout) {
                    // A copy in another layout of the kernel's element type: reordered from.
                    sources[argument] = c
                }
            }
        }
        let made = try Profiler.measure(label, flops: g.flops) {
            try withExtendedLifetime(operands) {
                try primitive.execute(buffers, prepared: ready, sources: sources, label: label, flops: g.flops)
            }
        }
        var copies = ConvCopies()
        for (argument, role, _, kept) in operands {
            // The copies read as they were given count too: the next kernel may read them again.
            if let role { copies[role] = made[argument] ?? ready[argument] }
            if let kept, let c = made[argument] { kept.add(c) }
        }
        if keepResultCopy, let c = made[result.argument] {
            out.keepLayoutCopies()
            out.layoutCopies?.add(c)
        }
        return (out, copies)
    }

    /// A fully connected convolution as the matrix product `mm` of `a` and `b` (+ `bias`), shaped
    /// as the operand in the role `into`.
    /// With `channelsLast`, the result is the activation in `role` stored channels last.
    private static func matrixProduct(
        _ label: String, _ g: ConvGeometry, _ mm: MatMulGeometry, _ a: @autoclosure () -> Tensor, _ b: @autoclosure () -> Tensor,
        _ bias: Tensor?, into role: ConvRole, channelsLast: Bool = false
    ) throws -> (Tensor, ConvCopies) {
        let product = try Profiler.measure(label, flops: g.flops) { try MatMulPrimitives.run(a(), b(), bias, mm) }
        let dims = g.dims(role)
        return (Tensor(storage: product.storage, shape: dims, strides: channelsLast ? Tensor.channelsLastStrides(dims) : nil), ConvCopies())
    }
}

extension ConvGeometry {
    /// Whether, in the calling thread's precision and inside
    /// `ActivationLayout.storingConvolutionResultsChannelsLast`, this convolution's kernels compute
    /// channels last (`nhwc`) and write their activation results stored that way
    /// (`Tensor.storageLayout`), so that batch norm and the next convolution read them without a
    /// reorder: in bf16, where
    /// either channel count is at least 16. Results of fewer channels (an image, its gradient)
    /// stay [N, C, H, W]; the kernels still compute channels last on their side of 16 or more,
    /// so that the activation there needs no reorder either (and the layouts that meet in the
    /// leaky-ReLU gradient of a discriminator's first layer agree).
    ///
    /// On Zen 4, oneDNN 2.6's bf16 kernels computing `nhwc` run DCGAN's layers at the speed of
    /// its channel-blocked ones (forward 500-570 GFLOP/s against 510-610, backward-data and
    /// backward-weights within 1%), and a result stored channels last needs no reorder to
    /// [N, C, H, W]. fp32 keeps the blocked kernels: its backward-weights kernel lost 17% `nhwc`.
    func prefersChannelsLast(_ precision: ComputePrecision = ComputePrecision.current) -> Bool {
        let channels = [input[1], output[1]]
        return precision == .bf16 && ConvGeometry.channelsLastScope.value && !isFullyConnected && channels.max()! >= 16
    }

    /// Whether the calling thread is inside `ActivationLayout.storingConvolutionResultsChannelsLast`.
    static let channelsLastScope = ThreadLocal<Bool> { false }

    /// How a kernel's result in `role` (an activation) is stored.
    func resultLayout(_ role: ConvRole) -> ActivationLayout {
        prefersChannelsLast() && dims(role)[1] >= 16 ? .channelsLast : .channelsFirst
    }

    /// Whether backward-data (a convolution's input gradient, a transposed convolution's forward)
    /// should run on oneDNN's GEMM-based kernel: for results of fewer than 16 channels (a
    /// generator's image, the gradient of a discriminator's input image), in either precision.
    /// The channel-blocked JIT kernel pads those channels to a block of 16. On Zen 4, for 64
    /// images of 32x32 from 64 channels (1 channel), it took 1.11 ms in bf16 where the GEMM
    /// kernel took 0.22 ms, and 4.7 against 2.2 ms for 3 channels of 64x64; in fp32, DCGAN-32's
    /// two such calls a step took 5.3-5.7 ms against 1.1-1.2 ms (profiles of 30 steps). fp32 kept
    /// the JIT kernel until session 35 because the GEMM kernel's summation order moved the
    /// data-parallel test's 1-rank run off its 2-rank twin (README, session 13); that test now
    /// agrees to 7e-7 with it.
    /// `KernelPath.gemm` can override the rule.
    var prefersGEMMBackwardData: Bool {
        KernelPath.gemm.chosen(rule: input[1] < 16)
    }

    /// Whether computing the weight gradient as a swapped forward convolution
    /// (`ConvolutionPrimitives.weightGradientAsForward`) is faster than oneDNN's bf16
    /// backward-weights kernel: a strided convolution with at least 16 input channels and at
    /// least 400 multiply-adds (times two) per element of x, dy and dw, which the swapped kernel
    /// reorders through transposing strides where the ordinary one mostly reuses the forward's
    /// copies.
    ///
    /// Measured on Zen 4 (whole bf16 steps, alternating): with DCGAN-32's and DCGAN-64's stride-2
    /// layers (650-1,200 per element) the steps took 3-10% less; with StyleGAN2-32's stride-2 3x3
    /// layers at batch 32 (160-200) 1-2% more, and with stride-1 layers (ProGAN, MSG-GAN, where
    /// oneDNN's kernel is already at 450 GFLOP/s) up to 10% more.
    var swappedWeightGradientPays: Bool {
        let elements = [input, output, weight].map { $0.reduce(1, *) }.reduce(0, +)
        return stride.allSatisfy { $0 >= 2 } && input[1] >= 16 && flops >= 400 * Double(elements)
    }

    /// Whether the window covers the whole unpadded input, leaving a 1x1 output: then the
    /// convolution is the matrix product of the flattened input and the flattened weight.
    var isFullyConnected: Bool {
        output[2] == 1 && output[3] == 1 && padding == [0, 0] && dilation == [1, 1]
            && weight[2] == input[2] && weight[3] == input[3]
    }

    /// Whether a fully connected convolution's input gradient is stored channels last: where
    /// other convolutions' results are (`prefersChannelsLast`), for 16 channels or more.
    var fullyConnectedChannelsLast: Bool {
        ComputePrecision.current == .bf16 && ConvGeometry.channelsLastScope.value && input[1] >= 16
    }

    /// An [N, C, H, W] tensor stored channels last as the [N, H W C] matrix of its rows of
    /// windows in (kh, kw, c) order (no copy).
    func channelsLastMatrix(_ t: Tensor) -> Tensor {
        precondition(t.isChannelsLastDense, "channelsLastMatrix of a tensor not stored channels last")
        return Tensor(storage: t.storage, shape: [t.shape[0], t.count / t.shape[0]], offset: t.offset)
    }

    /// The weight [O, C, KH, KW] as an [O, KH KW C] matrix, to multiply windows in (kh, kw, c)
    /// order (a copy).
    func channelsLastWeights(_ w: Tensor) throws -> Tensor {
        let permuted = try w.detached().permuted([0, 2, 3, 1]).contiguousData()
        return Tensor(storage: permuted.storage, shape: [weight[0], patch], offset: permuted.offset)
    }

    /// C KH KW, the length of one flattened window.
    var patch: Int { weight[1] * weight[2] * weight[3] }

    /// `t` as a contiguous [rows, count / rows] matrix (no copy when already contiguous).
    func matrix(_ t: Tensor, rows: Int) -> Tensor {
        let c = t.contiguousData()
        return Tensor(storage: c.storage, shape: [rows, c.count / rows], offset: c.offset)
    }
}
