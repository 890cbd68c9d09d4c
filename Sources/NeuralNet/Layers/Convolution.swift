import TensorRuntime

/// A 2-D convolution with weight [out, in, kh, kw] (PyTorch's `nn.Conv2d`).
public final class Conv2D: ActivationFusing {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int, padding: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true,
                rng: inout PhiloxRandom) throws {
        let shape = [outChannels, inChannels, kernel, kernel]
        weight = parameter(try Initializers.defaultWeight(shape, using: &rng))
        self.bias = bias ? parameter(try Initializers.defaultBias(outChannels, weightShape: shape, using: &rng)) : nil
        self.stride = stride
        self.padding = padding
    }

    /// The convolution followed by a leaky ReLU of `leakySlope` (0: a ReLU) in one op, when it
    /// is given (`conv2d(...leakySlope:)`).
    public func forward(_ x: Tensor, mode: ForwardMode, leakySlope: Float?) throws -> Tensor {
        try conv2d(x, weight: weight, bias: bias, stride: Size2D(stride, stride), padding: Size2D(padding, padding),
                   leakySlope: leakySlope)
    }

    public var namedParameters: [(String, Tensor)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        let k = weight.shape[2]
        guard input.count == 4, input[1] == weight.shape[1] else {
            throw TensorError("Conv2d(\(weight.shape[1]) -> \(weight.shape[0])): input \(describe(input)) must be [N, \(weight.shape[1]), H, W]")
        }
        let h = (input[2] + 2 * padding - k) / stride + 1, w = (input[3] + 2 * padding - k) / stride + 1
        guard input[2] + 2 * padding >= k, input[3] + 2 * padding >= k else {
            throw TensorError("Conv2d(\(weight.shape[1]) -> \(weight.shape[0]), kernel \(k)): input \(describe(input)) is smaller than the kernel")
        }
        return [input[0], weight.shape[0], h, w]
    }
}

/// A 2-D transposed convolution with weight [in, out, kh, kw] (PyTorch's `nn.ConvTranspose2d`).
public final class ConvTranspose2D: Layer {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int, padding: Int, outputPadding: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, outputPadding: Int = 0,
                bias: Bool = true, rng: inout PhiloxRandom) throws {
        let shape = [inChannels, outChannels, kernel, kernel]
        weight = parameter(try Initializers.defaultWeight(shape, using: &rng))
        self.bias = bias ? parameter(try Initializers.defaultBias(outChannels, weightShape: shape, using: &rng)) : nil
        self.stride = stride
        self.padding = padding
        self.outputPadding = outputPadding
    }

    public func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor {
        try convTranspose2d(x, weight: weight, bias: bias, stride: Size2D(stride, stride), padding: Size2D(padding, padding),
                            outputPadding: Size2D(outputPadding, outputPadding))
    }

    public var namedParameters: [(String, Tensor)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        let k = weight.shape[2]
        guard input.count == 4, input[1] == weight.shape[0] else {
            throw TensorError("ConvTranspose2d(\(weight.shape[0]) -> \(weight.shape[1])): input \(describe(input)) must be [N, \(weight.shape[0]), H, W]")
        }
        let h = (input[2] - 1) * stride - 2 * padding + k + outputPadding
        let w = (input[3] - 1) * stride - 2 * padding + k + outputPadding
        return [input[0], weight.shape[1], h, w]
    }
}
