import Synchronization

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

    private static let state = Mutex<[Choice]>([])

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
