import TensorRuntime

/// Batch norm whose gain and bias depend on the class of each image (SNGAN, BigGAN):
/// normalisation without its own affine, then `gain[y] * x + bias[y]` per channel.
///
/// Named as the PyTorch module `bn = BatchNorm2d(C, affine=False)`, `gain = Embedding(K, C)`,
/// `bias = Embedding(K, C)`: `bn.running_mean`, `bn.running_var`, `bn.num_batches_tracked`,
/// `gain.weight` (starts at 1) and `bias.weight` (starts at 0). Inside
/// `BatchNorm.synchronized(over:)` the statistics are synchronized like `BatchNorm`'s.
public final class ConditionalBatchNorm: Layer {
    public let gain: Tensor
    public let bias: Tensor
    /// The module `bn`'s statistics.
    public let statistics: BatchStatistics
    public let classes: Int

    public init(_ features: Int, classes: Int, momentum: Float = 0.1, eps: Float = 1e-5) {
        self.classes = classes
        gain = parameter(Tensor(repeating: 1, shape: [classes, features]))
        bias = parameter(Tensor(zeros: [classes, features]))
        statistics = BatchStatistics(features, momentum: momentum, eps: eps)
    }

    public func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor {
        _ = try outputShape(for: x.shape)
        let n = x.shape[0], c = x.shape[1]
        let oneHot = try ClassLabels.oneHot(classes: classes, batch: n, layer: "ConditionalBatchNorm(\(c), \(classes) classes)")
        let normalized = try statistics.normalize(x, mode: mode, weight: nil, bias: nil)
        let perRow = x.rank == 4 ? [n, c, 1, 1] : [n, c]
        let g = try matmul(oneHot, gain).reshaped(perRow), b = try matmul(oneHot, bias).reshaped(perRow)
        return try normalized * g + b
    }

    public var namedParameters: [(String, Tensor)] { [("gain.weight", gain), ("bias.weight", bias)] }
    public var namedBuffers: [(String, Tensor)] { statistics.namedBuffers.map { ("bn." + $0.0, $0.1) } }
    public var namedCounters: [(String, Int)] { statistics.namedCounters.map { ("bn." + $0.0, $0.1) } }
    public func setCounter(_ name: String, _ value: Int) {
        if name.hasPrefix("bn.") { statistics.setCounter(String(name.dropFirst(3)), value) }
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        let c = gain.shape[1]
        guard input.count == 2 || input.count == 4, input[1] == c else {
            throw TensorError("ConditionalBatchNorm(\(c)): input \(describe(input)) must be [N, \(c)] or [N, \(c), H, W]")
        }
        return input
    }
}
