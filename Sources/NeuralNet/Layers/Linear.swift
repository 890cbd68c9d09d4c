import TensorRuntime

/// A fully connected layer, `y = x W^T + b`, with W of shape [out, in] as in PyTorch.
public final class Linear: Layer {
    public let weight: Tensor
    public let bias: Tensor?

    /// PyTorch's default initialisation (Kaiming uniform with a = sqrt(5), bias U(-1/sqrt(in), 1/sqrt(in))).
    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, rng: inout PhiloxRandom) throws {
        let shape = [outFeatures, inFeatures]
        weight = parameter(try Initializers.defaultWeight(shape, using: &rng))
        self.bias = bias ? parameter(try Initializers.defaultBias(outFeatures, weightShape: shape, using: &rng)) : nil
    }

    public func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor {
        try linear(x, weight: weight, bias: bias)
    }

    public var namedParameters: [(String, Tensor)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 2, input[1] == weight.shape[1] else {
            throw TensorError("Linear(\(weight.shape[1]) -> \(weight.shape[0])): input \(describe(input)) must be [N, \(weight.shape[1])]")
        }
        return [input[0], weight.shape[0]]
    }
}
