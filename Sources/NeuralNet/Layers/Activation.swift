import TensorRuntime

/// A parameter-free elementwise function.
public final class Activation: Layer {
    public enum Kind: Sendable, Equatable {
        case relu, leakyRelu(Float), tanh, sigmoid, identity
    }

    public let kind: Kind

    public init(_ kind: Kind) { self.kind = kind }

    public func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor {
        switch kind {
        case .relu: return x.relu()
        case .leakyRelu(let s): return x.leakyRelu(negativeSlope: s)
        case .tanh: return x.tanh()
        case .sigmoid: return x.sigmoid()
        case .identity: return x
        }
    }
}

/// Reshapes each sample (PyTorch's `Flatten` / `Unflatten`), keeping the batch axis.
public final class Reshape: Layer {
    /// The per-sample shape.
    public let shape: [Int]

    public init(_ shape: [Int]) { self.shape = shape }

    public func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor {
        try x.reshaped([x.shape[0]] + shape)
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        let n = shape.reduce(1, *)
        guard let b = input.first, input.dropFirst().reduce(1, *) == n else {
            throw TensorError("Reshape to \(describe(shape)): input \(describe(input)) has \(input.dropFirst().reduce(1, *)) values per sample, expected \(n)")
        }
        return [b] + shape
    }
}

extension Activation.Kind {
    /// The negative slope of a ReLU (0) or leaky ReLU; nil for the other kinds.
    public var leakySlope: Float? {
        switch self {
        case .relu: 0
        case .leakyRelu(let s): s
        default: nil
        }
    }
}
