import CDNNL

#if canImport(Glibc)
import Glibc
#endif

/// Which oneDNN implementations the runtime's primitives use.
///
/// A `ref:` implementation for a convolution or matmul is a plain C++ loop nest, often a thousand
/// times slower than the JIT kernels; it means a layout or shape slipped past the fast paths.
/// Each one is recorded here and reported once on stderr.
public enum DNNLDiagnostics {
    /// One created primitive and the implementation oneDNN chose for it.
    public struct Choice: Sendable, Equatable, CustomStringConvertible {
        /// The op and its parameters, e.g. `conv.forward x [64, 64, 16, 16] w [128, 64, 4, 4] ...`.
        public let primitive: String
        /// oneDNN's implementation name, e.g. `brg:avx512_core_amx` or `ref:any`.
        public let implementation: String
        /// Implementations of the reorders into and out of the chosen layouts.
        public let reorders: [String]

        public var isReference: Bool { implementation.hasPrefix("ref:") }
        public var description: String {
            "\(primitive): \(implementation)" + (reorders.isEmpty ? "" : " (reorders: \(reorders.joined(separator: ", ")))")
        }
    }

    private static let state = Locked<[Choice]>([])

    /// Every primitive created so far, in creation order.
    public static var choices: [Choice] { state.withLock { $0 } }

    /// The primitives that fell back to a `ref:` implementation.
    public static var referenceImplementations: [Choice] { choices.filter(\.isReference) }

    static func record(key: PrimitiveKey, primitive: DNNLPrimitive) {
        let choice = Choice(
            primitive: key.description, implementation: primitive.implementation,
            reorders: primitive.arguments.compactMap { $0.reorder?.implementation })
        state.withLock { $0.append(choice) }
        // The cache records each key once, so this warns once per key.
        if choice.isReference {
            let message = "ganflow: warning: oneDNN chose the reference implementation '\(choice.implementation)' for \(choice.primitive); expect it to be very slow\n"
            _ = message.withCString { write(2, $0, strlen($0)) }
        }
    }
}

extension DNNLDiagnostics {
    /// Element types of a primitive's sources and weights.
    public enum DataType: String, Sendable {
        case f32
        case bf16
    }

    /// The instruction set oneDNN dispatches to on this CPU.
    public static var effectiveISA: String {
        switch dnnl_get_effective_cpu_isa() {
        case dnnl_cpu_isa_sse41: return "sse41"
        case dnnl_cpu_isa_avx: return "avx"
        case dnnl_cpu_isa_avx2: return "avx2"
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni"
        case dnnl_cpu_isa_avx512_core: return "avx512_core"
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx"
        case let other: return "isa 0x\(String(other.rawValue, radix: 16))"
        }
    }

    /// The implementation oneDNN offers for a convolution (N64 64->128 16x16 k4 s2 p1) and a
    /// matmul (64x1024x1024) with `dataType` sources and weights and f32 results, or nil when it
    /// has none on this CPU (`dnnl_unimplemented`): how a bf16 path would fare here.
    public static func implementations(dataType: DataType) -> (convolution: String?, matmul: String?) {
        func describe(_ status: dnnl_status_t, _ pd: dnnl_primitive_desc_t?) -> String? {
            guard status == dnnl_success, let pd else { return nil }
            defer { dnnl_primitive_desc_destroy(pd) }
            var impl: UnsafePointer<CChar>?
            dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl)
            return impl.map { String(cString: $0) } ?? "?"
        }
        func desc(_ dims: [Int64], _ type: dnnl_data_type_t, _ tag: dnnl_format_tag_t) -> dnnl_memory_desc_t {
            var md = dnnl_memory_desc_t()
            dnnl_memory_desc_init_by_tag(&md, Int32(dims.count), dims, type, tag)
            return md
        }
        let type = dataType == .bf16 ? dnnl_bf16 : dnnl_f32
        var src = desc([64, 64, 16, 16], type, dnnl_format_tag_any)
        var weights = desc([128, 64, 4, 4], type, dnnl_format_tag_any)
        var dst = desc([64, 128, 8, 8], dnnl_f32, dnnl_format_tag_any)
        var conv = dnnl_convolution_desc_t()
        dnnl_convolution_forward_desc_init(&conv, dnnl_forward_training, dnnl_convolution_direct, &src, &weights, nil,
                                           &dst, [2, 2], [1, 1], [1, 1])
        var convPD: dnnl_primitive_desc_t?
        let convStatus = dnnl_primitive_desc_create(&convPD, &conv, nil, DNNLContext.engine, nil)
        var a = desc([64, 1024], type, dnnl_ab), b = desc([1024, 1024], type, dnnl_ab)
        var c = desc([64, 1024], dnnl_f32, dnnl_ab)
        var matmul = dnnl_matmul_desc_t()
        dnnl_matmul_desc_init(&matmul, &a, &b, nil, &c)
        var matmulPD: dnnl_primitive_desc_t?
        let matmulStatus = dnnl_primitive_desc_create(&matmulPD, &matmul, nil, DNNLContext.engine, nil)
        return (describe(convStatus, convPD), describe(matmulStatus, matmulPD))
    }
}
