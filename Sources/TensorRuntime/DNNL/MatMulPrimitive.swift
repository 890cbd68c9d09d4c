import CDNNL

/// Everything that fixes a (batched) matrix product C = op(A) op(B) (+ bias), where op
/// transposes when asked. `batch` is nil for plain 2-D matrices.
struct MatMulGeometry: Hashable, Sendable {
    let batch: Int?
    let m: Int
    let k: Int
    let n: Int
    let transposeA: Bool
    let transposeB: Bool
    /// Whether a bias row [n] is added to every row of C.
    let bias: Bool

    var keyValues: [Int] { [batch ?? -1, m, k, n, transposeA ? 1 : 0, transposeB ? 1 : 0, bias ? 1 : 0] }

    var detail: String {
        "\(batch.map { "batch \($0) " } ?? "")m \(m) k \(k) n \(n)"
            + (transposeA ? " A^T" : "") + (transposeB ? " B^T" : "") + (bias ? " bias" : "")
    }

    var flops: Double { 2 * Double(batch ?? 1) * Double(m) * Double(k) * Double(n) }

    /// Logical dims of a [rows, cols] operand and the strides of how it is stored: row-major,
    /// or row-major as its transpose [cols, rows].
    private func operand(_ rows: Int, _ cols: Int, transposed: Bool) -> (dims: [Int], strides: [Int]) {
        let inner = transposed ? [1, rows] : [cols, 1]
        guard let batch else { return ([rows, cols], inner) }
        return ([batch, rows, cols], [rows * cols] + inner)
    }

    var a: (dims: [Int], strides: [Int]) { operand(m, k, transposed: transposeA) }
    var b: (dims: [Int], strides: [Int]) { operand(k, n, transposed: transposeB) }
    var c: [Int] { batch.map { [$0, m, n] } ?? [m, n] }
    var biasDims: [Int] { batch == nil ? [1, n] : [1, 1, n] }

    /// Whether this is a plain 2-D product with m, k or n equal to 1, an outer product or a
    /// matrix times a vector, which `MatMulPrimitives.vectorProduct` computes with a loop bound
    /// by memory. oneDNN's GEMM took 0.09-0.10 ms a call to write DCGAN-32's [64, 1] x [1, 4096]
    /// outer product (D's last layer's input gradient) on Zen 4, 5-6 GFLOP/s.
    var isVectorProduct: Bool { batch == nil && min(m, k, n) == 1 }

    /// Whether bf16 sources can make this product faster: not when it does fewer than 4 FLOPs
    /// per element of A, B and C, as a matrix-vector or outer product does (one of m, k, n
    /// at most 2, such as a discriminator's last layer of 4096 -> 1 and its gradients). Such a
    /// product is bound by memory, and in bf16 each source is read as f32, written as a bf16
    /// copy and read again. On Zen 4, keeping DCGAN-32's three in fp32 made its bf16 step
    /// 1.3-2% faster (alternating pairs).
    var bf16Pays: Bool {
        let elements = Double(batch ?? 1) * Double(m * k + k * n + m * n)
        return flops >= 4 * elements
    }
}

enum MatMulPrimitives {
    /// The matmul primitive for `g`, in the calling thread's `ComputePrecision` (in bf16, A and
    /// B are read as bf16 copies and C is written in f32), except that a product bound by
    /// memory stays fp32 (`MatMulGeometry.bf16Pays`).
    ///
    /// Unlike convolution, oneDNN's GEMM reads plain and transposed (strided) operands directly,
    /// and letting it choose layouts made it ask for an untransposed weight copy on every call
    /// (a reorder as slow as the product itself for `linear`). So the plain layouts are tried
    /// first, and `format_tag_any` with reorders only if they would get a `ref:` kernel.
    static func matmul(_ g: MatMulGeometry) throws -> DNNLPrimitive {
        let precision = g.bf16Pays ? ComputePrecision.current : .fp32
        let key = PrimitiveKey(kind: .matmul, values: g.keyValues, precision: precision, detail: g.detail)
        return try PrimitiveCache.shared.primitive(for: key, threads: g.flops < Runtime.singleThreadFLOPs ? 1 : nil) {
            try precision.primitive { precision in
                let a = try DNNLContext.plainDesc(g.a.dims, strides: g.a.strides)
                let b = try DNNLContext.plainDesc(g.b.dims, strides: g.b.strides)
                let c = try DNNLContext.plainDesc(g.c)
                let bias = try DNNLContext.plainDesc(g.biasDims)
                var args: [(Int32, dnnl_memory_desc_t, Bool)] = [
                    (DNNL_ARG_SRC, a, false), (DNNL_ARG_WEIGHTS, b, false), (DNNL_ARG_DST, c, true),
                ]
                if g.bias { args.append((DNNL_ARG_BIAS, bias, false)) }
                let type = precision.sourceType
                let plain = try descriptor(g, try DNNLContext.plainDesc(g.a.dims, strides: g.a.strides, type: type),
                                           try DNNLContext.plainDesc(g.b.dims, strides: g.b.strides, type: type), c, bias)
                if !DNNLPrimitive.implementationName(plain).hasPrefix("ref:") {
                    return try DNNLPrimitive(descriptor: plain, arguments: args)
                }
                dnnl_primitive_desc_destroy(plain)
                let chosen = try descriptor(
                    g, try DNNLContext.anyDesc(g.a.dims, type: type), try DNNLContext.anyDesc(g.b.dims, type: type),
                    try DNNLContext.anyDesc(g.c), bias)
                return try DNNLPrimitive(descriptor: chosen, arguments: args)
            }
        }
    }

    private static func descriptor(
        _ g: MatMulGeometry, _ a: dnnl_memory_desc_t, _ b: dnnl_memory_desc_t, _ c: dnnl_memory_desc_t,
        _ bias: dnnl_memory_desc_t
    ) throws -> dnnl_primitive_desc_t {
        var a = a, b = b, c = c, bias = bias
        var desc = dnnl_matmul_desc_t()
        let status = withUnsafePointer(to: &bias) { p in
            dnnl_matmul_desc_init(&desc, &a, &b, g.bias ? p : nil, &c)
        }
        try DNNLContext.check(status, "matmul_desc_init(\(g.detail))")
        let attr = try DNNLContext.makeAttributes()
        defer { dnnl_primitive_attr_destroy(attr) }
        var pd: dnnl_primitive_desc_t?
        try DNNLContext.check(dnnl_primitive_desc_create(&pd, &desc, attr, DNNLContext.engine, nil),
                              "primitive_desc_create(matmul \(g.detail))")
        return pd!
    }

    /// Runs C = op(A) op(B) (+ bias) on tensors, without recording.
    static func run(_ a: Tensor, _ b: Tensor, _ bias: Tensor?, _ g: MatMulGeometry) throws -> Tensor {
        let ac = a.contiguousData(), bc = b.contiguousData(), biasc = bias?.contiguousData()
        let out = Tensor(uninitialized: g.c)
        let label = "matmul " + g.detail
        if g.isVectorProduct {
            Profiler.measure(label, flops: g.flops) {
                withExtendedLifetime((ac, bc, biasc)) { vectorProduct(ac.data, bc.data, biasc?.data, into: out.data, g) }
            }
            return out
        }
        let primitive = try matmul(g)
        var buffers = [DNNL_ARG_SRC: ac.data, DNNL_ARG_WEIGHTS: bc.data, DNNL_ARG_DST: out.data]
        if let biasc { buffers[DNNL_ARG_BIAS] = biasc.data }
        try Profiler.measure(label, flops: g.flops) {
            try withExtendedLifetime((ac, bc, biasc)) { _ = try primitive.execute(buffers, label: label, flops: g.flops) }
        }
        return out
    }

    /// C = op(A) op(B) (+ bias) for a plain 2-D product with m, k or n equal to 1
    /// (`MatMulGeometry.isVectorProduct`): an outer product, or a matrix times a vector. Every
    /// element of C is computed by one thread, its terms added in the same order whatever the
    /// thread count; sums of a row use sixteen lanes, added across at the end.
    static func vectorProduct(
        _ a: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>, _ bias: UnsafeMutablePointer<Float>?,
        into c: UnsafeMutablePointer<Float>, _ g: MatMulGeometry
    ) {
        let (m, k, n) = (g.m, g.k, g.n)
        let bytes = 4 * (m * k + k * n + m * n)
        if k == 1 {
            // C[i, j] = a[i] b[j]: either operand, transposed or not, is its values in order.
            ParallelLoop.chunks(m, bytes: bytes) { rows in
                for i in rows {
                    let ai = a[i], row = c + i * n
                    if let bias {
                        for j in 0..<n { row[j] = ai * b[j] + bias[j] }
                    } else {
                        for j in 0..<n { row[j] = ai * b[j] }
                    }
                }
            }
            return
        }
        if n == 1 {
            // C[i] = sum over l of A(i, l) b[l].
            ParallelLoop.chunks(m, bytes: bytes) { rows in
                if g.transposeA {
                    // A stored [k, m]: whole rows of A scaled by b[l] and added, l in order.
                    for i in rows { c[i] = 0 }
                    for l in 0..<k {
                        let bl = b[l], column = a + l * m
                        for i in rows { c[i] += column[i] * bl }
                    }
                } else {
                    for i in rows { c[i] = dot(a + i * k, b, count: k) }
                }
                if let bias { for i in rows { c[i] += bias[0] } }
            }
            return
        }
        // m == 1: C[j] = sum over l of a[l] B(l, j).
        ParallelLoop.chunks(n, bytes: bytes) { columns in
            if g.transposeB {
                for j in columns { c[j] = dot(b + j * k, a, count: k) }
            } else {
                // B stored [k, n]: its rows scaled by a[l] and added, l in order.
                for j in columns { c[j] = 0 }
                for l in 0..<k {
                    let al = a[l], row = b + l * n
                    for j in columns { c[j] += row[j] * al }
                }
            }
            if let bias { for j in columns { c[j] += bias[j] } }
        }
    }

    /// The sum of p[i] q[i] over `count` values, in sixteen lanes added across at the end.
    @inline(__always)
    private static func dot(_ p: UnsafeMutablePointer<Float>, _ q: UnsafeMutablePointer<Float>, count: Int) -> Float {
        let rp = UnsafeRawPointer(p), rq = UnsafeRawPointer(q)
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            acc += rp.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                * rq.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        var total = acc.sum()
        while i < count {
            total += p[i] * q[i]
            i += 1
        }
        return total
    }
}
