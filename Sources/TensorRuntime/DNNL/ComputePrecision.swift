import CDNNL

/// The element type that convolutions and matrix products read their sources and weights in.
///
/// In `bf16`, the oneDNN convolution (forward, backward-data, backward-weights) and matmul
/// kernels take bfloat16 sources and weights, accumulate in fp32 and write fp32 results: each
/// kernel's inputs are rounded to bf16 as they are reordered into its layout, from the fp32
/// tensors every other op keeps. Weights, gradients, optimizer state, batch-norm statistics and
/// losses stay fp32, so a bf16 run checkpoints, resumes and exports like an fp32 one. Gradient
/// penalties' second-order terms (the recorded backward of a convolution is convolutions again)
/// run in bf16 too.
///
/// Per thread, like `GradMode`, because stages run on whatever thread the scheduler picks and
/// tests run concurrently: the pipeline runner sets it around each stage. A kernel shape for
/// which oneDNN has no bf16 implementation (or only a `ref:` one) computes in fp32; the
/// implementation each primitive got is in `DNNLDiagnostics.choices` (`ganflow bench --kernels`).
public enum ComputePrecision: String, Sendable, CaseIterable {
    case fp32
    case bf16

    private static let currentValue = ThreadLocal<ComputePrecision> { .fp32 }

    /// The calling thread's precision; fp32 unless inside `with(_:_:)`.
    @inline(__always)
    public static var current: ComputePrecision { currentValue.value }

    /// Runs `body` with the calling thread's convolutions and matmuls in `precision`, restoring
    /// the previous precision afterwards.
    public static func with<T>(_ precision: ComputePrecision, _ body: () throws -> T) rethrows -> T {
        try currentValue.with(precision, body)
    }

    /// oneDNN's element type for kernel sources and weights.
    var sourceType: dnnl_data_type_t { self == .bf16 ? dnnl_bf16 : dnnl_f32 }

    /// Throws unless oneDNN has non-reference convolution and matmul kernels for this precision
    /// on this CPU; the message names the instruction set oneDNN found. fp32 always passes.
    ///
    /// The check creates (without running) a bf16 convolution and matmul descriptor, so it also
    /// fails when the instruction set is capped below bf16 (`ONEDNN_MAX_CPU_ISA=AVX2`).
    public func checkAvailable() throws {
        guard self == .bf16 else { return }
        let found = DNNLDiagnostics.implementations(dataType: .bf16)
        func usable(_ name: String?) -> Bool { name.map { !$0.hasPrefix("ref:") } ?? false }
        guard usable(found.convolution), usable(found.matmul) else {
            func show(_ name: String?) -> String { name.map { "only '\($0)'" } ?? "none" }
            throw TensorError(
                "precision bf16: oneDNN has no bf16 kernels on this CPU (instruction set '\(DNNLDiagnostics.effectiveISA)'; "
                    + "convolution: \(show(found.convolution)), matmul: \(show(found.matmul))); "
                    + "bf16 needs AVX512_BF16 (avx512_core_bf16) or AMX (avx512_core_amx): use precision fp32")
        }
    }

    /// A primitive `make` creates in this precision; in bf16, the fp32 one instead when oneDNN
    /// has no bf16 implementation for it, or only a reference loop nest (`ref:`).
    func primitive(_ make: (ComputePrecision) throws -> DNNLPrimitive) throws -> DNNLPrimitive {
        if self == .bf16, let made = try? make(.bf16), !made.implementation.hasPrefix("ref:") { return made }
        return try make(.fp32)
    }
}
