import CDNNL

/// The process-wide oneDNN CPU engine, and the stream each thread executes on.
///
/// Primitives are created once (see `PrimitiveCache`) and may run on several threads at once;
/// every execution brings its own memory objects and scratchpad, so nothing mutable is shared.
/// oneDNN does not promise that one stream may be used by two threads concurrently, so each
/// thread lazily gets its own CPU stream (for the CPU engine a stream is a thin handle).
enum DNNLContext {
    nonisolated(unsafe) static let engine: dnnl_engine_t = {
        var engine: dnnl_engine_t?
        let status = dnnl_engine_create(&engine, dnnl_cpu, 0)
        guard status == dnnl_success, let engine else {
            fatalError("oneDNN: cannot create a CPU engine (status \(status.rawValue))")
        }
        return engine
    }()

    /// A CPU stream, destroyed with its owner.
    private final class Stream {
        let handle: dnnl_stream_t
        init() {
            var stream: dnnl_stream_t?
            let status = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue)
            guard status == dnnl_success, let stream else {
                fatalError("oneDNN: cannot create a stream (status \(status.rawValue))")
            }
            handle = stream
        }
        deinit { dnnl_stream_destroy(handle) }
    }

    private static let streams = ThreadLocal<Stream> { Stream() }

    /// This thread's stream, created on first use and destroyed with the thread.
    static var stream: dnnl_stream_t { streams.value.handle }

    /// Throws a `TensorError` naming `call` when a oneDNN call fails.
    static func check(_ status: dnnl_status_t, _ call: @autoclosure () -> String) throws {
        guard status == dnnl_success else {
            throw TensorError("oneDNN \(call()) failed (status \(status.rawValue))")
        }
    }

    /// A plain row-major (or explicitly strided) memory descriptor, f32 unless `type` says.
    static func plainDesc(_ dims: [Int], strides: [Int]? = nil, type: dnnl_data_type_t = dnnl_f32) throws -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        let d = dims.map(Int64.init)
        let s = (strides ?? Tensor.contiguousStrides(dims)).map(Int64.init)
        try check(dnnl_memory_desc_init_by_strides(&md, Int32(dims.count), d, type, s),
                  "memory_desc_init_by_strides(\(describe(dims)))")
        return md
    }

    /// An f32 descriptor of an activation of [N, C, H, W] dimensions `dims` stored in `layout`.
    static func layoutDesc(_ dims: [Int], _ layout: ActivationLayout) throws -> dnnl_memory_desc_t {
        layout == .channelsLast ? try channelsLastDesc(dims) : try plainDesc(dims)
    }

    /// A descriptor (f32 unless `type` says) of [N, C, H, W] dimensions `dims` in `nhwc`, for a
    /// kernel made to compute channels last.
    static func channelsLastDesc(_ dims: [Int], type: dnnl_data_type_t = dnnl_f32) throws -> dnnl_memory_desc_t {
        try tagDesc(dims, type: type, tag: dnnl_nhwc)
    }

    /// A descriptor of `dims` in oneDNN's layout `tag`.
    static func tagDesc(_ dims: [Int], type: dnnl_data_type_t, tag: dnnl_format_tag_t) throws -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        let d = dims.map(Int64.init)
        try check(dnnl_memory_desc_init_by_tag(&md, Int32(dims.count), d, type, tag),
                  "memory_desc_init_by_tag(\(describe(dims)), \(tag.rawValue))")
        return md
    }

    /// A descriptor (f32 unless `type` says) whose layout the primitive chooses (`format_tag_any`).
    static func anyDesc(_ dims: [Int], type: dnnl_data_type_t = dnnl_f32) throws -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        let d = dims.map(Int64.init)
        try check(dnnl_memory_desc_init_by_tag(&md, Int32(dims.count), d, type, dnnl_format_tag_any),
                  "memory_desc_init_by_tag(\(describe(dims)), any)")
        return md
    }

    /// Attributes asking for a user-provided scratchpad, so that concurrent executions of one
    /// primitive never share a temporary buffer; with `eltwisePostOps` (algorithm, alpha: a
    /// leaky ReLU's negative slope), element-wise ops that the primitive applies to its result in
    /// the same pass, in order.
    static func makeAttributes(eltwisePostOps: [(dnnl_alg_kind_t, Float)] = []) throws -> dnnl_primitive_attr_t {
        var attr: dnnl_primitive_attr_t?
        try check(dnnl_primitive_attr_create(&attr), "primitive_attr_create")
        do {
            try check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user),
                      "primitive_attr_set_scratchpad_mode")
            if !eltwisePostOps.isEmpty {
                var ops: dnnl_post_ops_t?
                try check(dnnl_post_ops_create(&ops), "post_ops_create")
                defer { dnnl_post_ops_destroy(ops) }
                // Scale 1, beta 0.
                for (kind, alpha) in eltwisePostOps {
                    try check(dnnl_post_ops_append_eltwise(ops, 1, kind, alpha, 0), "post_ops_append_eltwise")
                }
                try check(dnnl_primitive_attr_set_post_ops(attr, ops), "primitive_attr_set_post_ops")
            }
        } catch {
            dnnl_primitive_attr_destroy(attr)
            throw error
        }
        return attr!
    }
}
