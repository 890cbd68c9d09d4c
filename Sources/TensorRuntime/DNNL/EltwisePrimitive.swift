import CDNNL

/// oneDNN's elementwise kernels for transcendental functions whose libm versions run one
/// element at a time (glibc's `tanhf` costs about 30 ns an element; oneDNN's JIT kernel
/// evaluates 8 at once with AVX2). Tensors below `minimumCount` elements stay on libm: for them
/// setting up an execution costs more than it saves.
enum EltwisePrimitives {
    enum Function: Int {
        case tanh

        var algorithm: dnnl_alg_kind_t {
            switch self {
            case .tanh: dnnl_eltwise_tanh
            }
        }

        var name: String {
            switch self {
            case .tanh: "tanh"
            }
        }
    }

    static let minimumCount = 4096

    /// f(x) for every element of `x` (any shape), without recording; nil when `x` is too small to
    /// be worth it (the caller then uses libm).
    static func run(_ x: Tensor, _ f: Function) throws -> Tensor? {
        let n = x.count
        guard n >= minimumCount else { return nil }
        let key = PrimitiveKey(kind: .eltwise, values: [f.rawValue, n], detail: "\(f.name) \(n)")
        let primitive = try PrimitiveCache.shared.primitive(for: key, threads: n < 1 << 16 ? 1 : nil) {
            var md = try DNNLContext.plainDesc([n])
            var desc = dnnl_eltwise_desc_t()
            try DNNLContext.check(dnnl_eltwise_forward_desc_init(&desc, dnnl_forward_inference, f.algorithm, &md, 0, 0),
                                  "eltwise_forward_desc_init(\(f.name))")
            let attr = try DNNLContext.makeAttributes()
            defer { dnnl_primitive_attr_destroy(attr) }
            var pd: dnnl_primitive_desc_t?
            try DNNLContext.check(dnnl_primitive_desc_create(&pd, &desc, attr, DNNLContext.engine, nil),
                                  "primitive_desc_create(eltwise \(f.name))")
            return try DNNLPrimitive(descriptor: pd!, arguments: [(DNNL_ARG_SRC, md, false), (DNNL_ARG_DST, md, true)])
        }
        let src = x.contiguousData()
        let out = Tensor(uninitialized: x.shape)
        try withExtendedLifetime(src) {
            _ = try primitive.execute([DNNL_ARG_SRC: src.data, DNNL_ARG_DST: out.data], label: "eltwise \(f.name)")
        }
        return out
    }
}
