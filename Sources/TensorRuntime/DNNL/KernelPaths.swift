/// The runtime's own alternatives to oneDNN's convolution kernels, each taken where a rule
/// measured on one CPU says it pays, and how to override those rules for a measurement.
///
/// The rules were measured on Zen 4 (AVX512_BF16); on another CPU (Sapphire Rapids' AMX
/// kernels, an AVX2-only EPYC) they are guesses until someone measures them there.
/// `ganflow bench --variant PATH=MODE` times a model with one or more rules overridden,
/// alternating round by round with the rules as shipped, and prints the ratio.
///
/// Per thread, like `ComputePrecision`: the benchmark sets it around its steps, and tests that
/// run concurrently each keep the shipped rules.
public enum KernelPath: String, Sendable, CaseIterable {
    /// A strided convolution's backward-data (a transposed convolution's forward) as one forward
    /// convolution per phase of the input's rows and columns (`BackwardDataPhases`). Rule: bf16,
    /// dy of 16 positions or fewer, and oneDNN's own kernel not an AMX one.
    case phases
    /// The weight gradient as a forward convolution with the batch and channel axes swapped
    /// (`ConvolutionPrimitives.weightGradientAsForward`). Rule: bf16, strided, 16 input channels
    /// or more, enough multiply-adds per element (`ConvGeometry.swappedWeightGradientPays`).
    case swapped
    /// oneDNN's GEMM-based backward-data kernel in place of the channel-blocked JIT one. Rule:
    /// results of fewer than 16 channels (`ConvGeometry.prefersGEMMBackwardData`).
    case gemm

    /// How a path is chosen.
    public enum Mode: String, Sendable, CaseIterable {
        /// By its rule, as shipped.
        case rule
        /// Wherever it computes the same values (its rule's speed conditions ignored).
        case always
        /// Never: oneDNN's ordinary kernel.
        case never
    }

    private static let overrides = ThreadLocal<[KernelPath: Mode]> { [:] }

    /// The calling thread's mode for this path: `rule` unless inside `with(_:_:)`.
    public var mode: Mode { Self.overrides.value[self] ?? .rule }

    /// Runs `body` with the calling thread's paths chosen as `modes` says (the others by their
    /// rules), restoring the previous choice afterwards.
    public static func with<T>(_ modes: [KernelPath: Mode], _ body: () throws -> T) rethrows -> T {
        try overrides.with(modes, body)
    }

    /// Parses `path=mode` (e.g. `phases=never`), with an error naming what is accepted.
    public static func parse(_ text: String) throws -> (KernelPath, Mode) {
        let parts = text.split(separator: "=", omittingEmptySubsequences: false).map(String.init)
        let paths = allCases.map(\.rawValue).joined(separator: ", "), modes = Mode.allCases.map(\.rawValue).joined(separator: ", ")
        guard parts.count == 2 else {
            throw TensorError("'\(text)': expected PATH=MODE, with PATH one of \(paths) and MODE one of \(modes)")
        }
        guard let path = KernelPath(rawValue: parts[0]) else {
            throw TensorError("'\(text)': unknown kernel path '\(parts[0])'; one of \(paths)")
        }
        guard let mode = Mode(rawValue: parts[1]) else {
            throw TensorError("'\(text)': unknown mode '\(parts[1])' for \(parts[0]); one of \(modes)")
        }
        return (path, mode)
    }

    /// Whether the path runs where it is exact, given whether its rule says it pays.
    func chosen(rule pays: @autoclosure () -> Bool) -> Bool {
        switch mode {
        case .rule: pays()
        case .always: true
        case .never: false
        }
    }
}
