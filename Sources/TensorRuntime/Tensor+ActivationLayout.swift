import CDNNL

/// The order of an activation's axes: PyTorch's [N, C, H, W], or channels last, [N, H, W, C].
///
/// Channels last is the layout oneDNN's convolution kernels compute in on AVX-512 CPUs (its
/// `brgconv` kernels choose `nhwc`). Inference through consecutive convolutions, pooling and
/// channel concatenation can stay in it instead of converting to [N, C, H, W] and back around
/// every kernel: `conv2dReLU(..., layout: .channelsLast)` reads and writes it, `maxPool2d` and
/// `avgPool2d` pool it (oneDNN's pooling kernels), concatenation along channels is
/// `concat(axis: 3)` and the spatial mean `mean(axes: [1, 2])`. Kernels on channels-last
/// tensors record nothing for autograd.
public enum ActivationLayout: String, Sendable {
    /// [N, C, H, W]
    case channelsFirst
    /// [N, H, W, C]
    case channelsLast

    /// The layout the convolution kernels choose for their activations on this CPU, when it
    /// is one of the two (channels first otherwise: the kernels' own blocked layouts have no
    /// tensor shape here).
    public static let preferred: ActivationLayout = {
        // A representative inference convolution (Inception's 17x17 stage), every layout left to oneDNN.
        let g = ConvGeometry(input: [2, 64, 17, 17], weight: [64, 64, 3, 3], output: [2, 64, 17, 17],
                             stride: [1, 1], padding: [1, 1], dilation: [1, 1])
        guard let pd = try? ConvolutionPrimitives.forwardDescriptor(g, bias: true, activation: .inferenceReLU) else { return .channelsFirst }
        defer { dnnl_primitive_desc_destroy(pd) }
        guard var chosen = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0)?.pointee,
              var last = try? DNNLContext.layoutDesc(g.output, .channelsLast) else { return .channelsFirst }
        return dnnl_memory_desc_equal(&chosen, &last) != 0 ? .channelsLast : .channelsFirst
    }()

    /// The [N, C, H, W] dimensions of an activation of shape `shape` in this layout.
    func logicalShape(_ shape: [Int]) -> [Int] {
        self == .channelsFirst ? shape : [shape[0], shape[3], shape[1], shape[2]]
    }

    /// The shape in this layout of an activation of [N, C, H, W] dimensions `logical`.
    func shape(_ logical: [Int]) -> [Int] {
        self == .channelsFirst ? logical : [logical[0], logical[2], logical[3], logical[1]]
    }

    /// Throws unless `t` is an activation that a kernel may read in this layout.
    func check(_ t: Tensor, _ op: String) throws {
        guard t.rank == 4 else {
            throw TensorError("\(op): expected an activation [N, C, H, W] or channels last [N, H, W, C], got \(describe(t.shape))")
        }
        if self == .channelsLast && GradMode.isEnabled && t.requiresGrad {
            throw TensorError("\(op): channels-last tensors are for inference; compute without gradients (withoutGradients)")
        }
    }
}

extension Tensor {
    /// [N, C, H, W] as channels last, [N, H, W, C] (a contiguous copy). Not recorded.
    public func channelsLast() throws -> Tensor {
        guard rank == 4 else { throw TensorError("channelsLast: expected [N, C, H, W], got \(describe(shape))") }
        return try withoutGradients { try permuted([0, 2, 3, 1]).contiguousData() }
    }

    /// Channels last, [N, H, W, C], as [N, C, H, W] (a contiguous copy). Not recorded.
    public func channelsFirst() throws -> Tensor {
        guard rank == 4 else { throw TensorError("channelsFirst: expected [N, H, W, C], got \(describe(shape))") }
        return try withoutGradients { try permuted([0, 3, 1, 2]).contiguousData() }
    }
}

/// oneDNN's pooling kernels for inference on activations in either layout.
enum PoolingPrimitives {
    /// Pools `x` (in `layout`) with square windows of `kernel`, moved by `stride` over the input
    /// padded by `padding`, with `algorithm` (`dnnl_pooling_max`, `dnnl_pooling_avg_include_padding`
    /// or `dnnl_pooling_avg_exclude_padding`); the caller has checked the geometry.
    static func forward(
        _ x: Tensor, layout: ActivationLayout, kernel: Int, stride: Int, padding: Int, algorithm: dnnl_alg_kind_t, op: String
    ) throws -> Tensor {
        try layout.check(x, op)
        let input = layout.logicalShape(x.shape)
        let oh = (input[2] + 2 * padding - kernel) / stride + 1, ow = (input[3] + 2 * padding - kernel) / stride + 1
        let output = [input[0], input[1], oh, ow]
        let key = PrimitiveKey(kind: .pooling, values: [Int(algorithm.rawValue), layout == .channelsLast ? 1 : 0, kernel, stride, padding] + input,
                               detail: "\(op) \(describe(input)) k\(kernel) s\(stride) p\(padding) \(layout.rawValue)")
        let primitive = try PrimitiveCache.shared.primitive(for: key, threads: nil) {
            var src = try DNNLContext.layoutDesc(input, layout)
            var dst = try DNNLContext.layoutDesc(output, layout)
            var desc = dnnl_pooling_desc_t()
            let strides = [Int64(stride), Int64(stride)], window = [Int64(kernel), Int64(kernel)]
            let pad = [Int64(padding), Int64(padding)]
            try DNNLContext.check(
                dnnl_pooling_forward_desc_init(&desc, dnnl_forward_inference, algorithm, &src, &dst, strides, window, pad, pad),
                "pooling_forward_desc_init(\(op) \(describe(input)))")
            let attr = try DNNLContext.makeAttributes()
            defer { dnnl_primitive_attr_destroy(attr) }
            var pd: dnnl_primitive_desc_t?
            try DNNLContext.check(dnnl_primitive_desc_create(&pd, &desc, attr, DNNLContext.engine, nil),
                                  "primitive_desc_create(\(op) \(describe(input)))")
            return try DNNLPrimitive(descriptor: pd!, arguments: [(DNNL_ARG_SRC, src, false), (DNNL_ARG_DST, dst, true)])
        }
        let src = x.contiguousData()
        let out = Tensor(uninitialized: layout.shape(output))
        let label = "\(op) \(layout.rawValue) \(input.map(String.init).joined(separator: "x")) k\(kernel) s\(stride)"
        try Profiler.measure(label) {
            try withExtendedLifetime(src) {
                _ = try primitive.execute([DNNL_ARG_SRC: src.data, DNNL_ARG_DST: out.data], label: label)
            }
        }
        return out
    }
}

// MARK: - [N, C, H, W] tensors stored channels last

/// Training activations stored channels last: a tensor of shape [N, C, H, W] whose strides are
/// [H W C, 1, W C, C], so that element (n, c, h, w) lies where oneDNN's `nhwc` layout puts it.
///
/// Unlike `ActivationLayout.channelsLast` (inference tensors of shape [N, H, W, C]), the shape
/// and every op's meaning stay those of [N, C, H, W]: only the order in memory differs, which
/// every op reading through strides (`contiguousData()`) already handles. bf16 convolutions
/// write their results this way where their kernels compute channels last
/// (`ConvGeometry.prefersChannelsLast`), and batch norm, the leaky-ReLU gradient, same-layout
/// addition and the next convolution read them as they are, without the reorders to and from
/// [N, C, H, W] around every kernel.
extension ActivationLayout {
    /// Runs `body` with the calling thread's bf16 convolutions writing their results stored
    /// channels last where their kernels compute that way (`ConvGeometry.prefersChannelsLast`),
    /// for networks whose other ops read such tensors as they lie: convolutions, batch norm,
    /// leaky ReLU (a DCGAN); elementwise ops, products with a broadcast operand, sums over axes,
    /// StyleGAN2's bias and activation and its FIR filter (StyleGAN2). An op that does not would
    /// convert every result back (`contiguousData()`), so networks that use one leave it off. The
    /// backward passes of the convolutions recorded inside keep the choice made in their forward.
    /// Outside bf16 it changes nothing.
    public static func storingConvolutionResultsChannelsLast<T>(_ body: () throws -> T) rethrows -> T {
        try ConvGeometry.channelsLastScope.with(true, body)
    }
}

extension Tensor {
    /// The strides of an [N, C, H, W] shape stored channels last.
    static func channelsLastStrides(_ shape: [Int]) -> [Int] {
        [shape[1] * shape[2] * shape[3], 1, shape[3] * shape[1], shape[1]]
    }

    /// This [N, C, H, W] tensor stored channels last, seen as the contiguous [N, H, W, C] tensor it
    /// is in memory. Not recorded.
    var channelsLastView: Tensor {
        Tensor(storage: storage, shape: ActivationLayout.channelsLast.shape(shape), offset: offset)
    }

    /// An operand of rank 4 or less broadcast against an [N, C, H, W] activation, as the operand
    /// of that activation's [N, H, W, C] view (`channelsLastView`). Not recorded.
    var broadcastChannelsLastView: Tensor {
        let c = contiguousData()
        let full = [Int](repeating: 1, count: 4 - rank) + shape
        let st = Tensor.contiguousStrides(full)
        let order = ActivationLayout.channelsLast
        return Tensor(storage: c.storage, shape: order.shape(full), strides: order.shape(st), offset: c.offset)
    }

    /// The contiguous [N, H, W, C] `r` as the [N, C, H, W] tensor `shape` stored channels last.
    static func channelsLastResult(_ r: Tensor, _ shape: [Int]) -> Tensor {
        Tensor(storage: r.storage, shape: shape, strides: channelsLastStrides(shape), offset: r.offset)
    }

    /// An uninitialised [N, C, H, W] tensor stored channels last.
    convenience init(uninitializedChannelsLast shape: [Int]) {
        self.init(storage: Storage(count: Tensor.elementCount(shape)), shape: shape,
                  strides: Tensor.channelsLastStrides(shape))
    }

    /// Whether this is an [N, C, H, W] tensor stored channels last without gaps, and not also
    /// contiguous (with one channel, or a 1x1 image, the two orders coincide).
    var isChannelsLastDense: Bool {
        guard rank == 4, !isContiguous else { return false }
        let expected = Tensor.channelsLastStrides(shape)
        for axis in 0..<4 where shape[axis] != 1 && strides[axis] != expected[axis] { return false }
        return true
    }

    /// How the values lie in memory, when a kernel can read them in place: `.channelsFirst` when
    /// contiguous, `.channelsLast` when stored channels last, nil otherwise.
    var storageLayout: ActivationLayout? {
        if isContiguous { return .channelsFirst }
        return isChannelsLastDense ? .channelsLast : nil
    }

    /// `a` and `b` (of one shape) stored alike without gaps, with the strides a result stored
    /// the same way takes: as they are when both are stored channels last, contiguous otherwise.
    /// For elementwise loops over raw memory.
    static func storedAlike(_ a: Tensor, _ b: Tensor) -> (Tensor, Tensor, strides: [Int]?) {
        if a.shape == b.shape, a.isChannelsLastDense, b.isChannelsLastDense { return (a, b, a.strides) }
        return (a.contiguousData(), b.contiguousData(), nil)
    }

    /// This tensor when a kernel can read it in place (`storageLayout`), a contiguous copy otherwise.
    var storedAsIs: Tensor { storageLayout == nil ? contiguousData() : self }

    /// This tensor's values stored in `layout` (itself when they already are), not recorded:
    /// oneDNN reorders between the two orders.
    func stored(_ layout: ActivationLayout) -> Tensor {
        if storageLayout == layout { return self }
        if layout == .channelsFirst { return contiguousData() }
        // One channel, or a 1x1 image: contiguous is channels last too.
        if rank == 4, isContiguous, shape[1] == 1 || shape[2] * shape[3] == 1 { return self }
        precondition(rank == 4, "stored(.channelsLast) of a tensor of shape \(describe(shape))")
        let source = contiguousData()
        let out = Tensor(uninitializedChannelsLast: shape)
        if !StorageOrderConversion.run(from: source, .channelsFirst, to: out, .channelsLast) {
            // The [N, H, W, C] view of the values, copied in row-major order.
            let (c, h, w) = (shape[1], shape[2], shape[3])
            let view = Tensor(storage: source.storage, shape: [shape[0], h, w, c], strides: [c * h * w, w, 1, h * w], offset: source.offset)
            copyStrided(from: view, into: out.data)
        }
        return out
    }
}

/// oneDNN reorders between the two storage orders of [N, C, H, W] f32 tensors, made once per
/// shape and direction.
enum StorageOrderConversion {
    private static let reorders = Locked<[[Int]: Reorder]>([:])

    /// Copies `source` (stored in `from`) into `destination` (stored in `to`, the same shape);
    /// false where oneDNN cannot.
    static func run(from source: Tensor, _ from: ActivationLayout, to destination: Tensor, _ to: ActivationLayout) -> Bool {
        let key = source.shape + [from == .channelsLast ? 1 : 0]
        let reorder: Reorder? = reorders.withLock { $0[key] } ?? {
            guard let a = try? DNNLContext.layoutDesc(source.shape, from), let b = try? DNNLContext.layoutDesc(source.shape, to),
                  let made = try? Reorder(from: a, to: b) else { return nil }
            reorders.withLock { $0[key] = made }
            return made
        }()
        guard let reorder, var a = try? DNNLContext.layoutDesc(source.shape, from),
              var b = try? DNNLContext.layoutDesc(source.shape, to) else { return false }
        var ma: dnnl_memory_t?, mb: dnnl_memory_t?
        defer {
            if let ma { dnnl_memory_destroy(ma) }
            if let mb { dnnl_memory_destroy(mb) }
        }
        guard dnnl_memory_create(&ma, &a, DNNLContext.engine, UnsafeMutableRawPointer(source.data)) == dnnl_success,
              dnnl_memory_create(&mb, &b, DNNLContext.engine, UnsafeMutableRawPointer(destination.data)) == dnnl_success
        else { return false }
        var scratch: [Storage] = []
        let done = Profiler.measure("reorder storage order") { () -> Bool in
            (try? reorder.run(from: ma!, to: mb!, stream: DNNLContext.stream) { bytes in
                let s = Storage(count: (bytes + 3) / 4)
                scratch.append(s)
                return UnsafeMutableRawPointer(s.pointer)
            }) != nil && dnnl_stream_wait(DNNLContext.stream) == dnnl_success
        }
        withExtendedLifetime((source, destination, scratch)) {}
        return done
    }
}
