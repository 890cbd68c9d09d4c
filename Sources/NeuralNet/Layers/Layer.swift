import TensorRuntime

/// How a forward pass behaves.
public struct ForwardMode: Sendable, Equatable {
    /// Batch norm normalises with batch statistics, dropout drops.
    public var training: Bool
    /// Batch norm updates its running statistics (only meaningful when training).
    public var updateStatistics: Bool

    public init(training: Bool, updateStatistics: Bool) {
        self.training = training
        self.updateStatistics = updateStatistics
    }

    public static let train = ForwardMode(training: true, updateStatistics: true)
    public static let eval = ForwardMode(training: false, updateStatistics: false)
    /// Batch statistics without touching the running ones: sampling during training, as the
    /// tutorials do, without the side effect on the model.
    public static let sample = ForwardMode(training: true, updateStatistics: false)
}

/// A differentiable building block with named parameters and buffers.
///
/// Names follow PyTorch's `state_dict` for the equivalent `nn.Module`, so checkpoints exchange
/// with PyTorch: a `Sequential` names children by index (`main.0.weight`), a `Linear` has
/// `weight` [out, in] and `bias`, a `BatchNorm` has `running_mean`, `running_var` and
/// `num_batches_tracked`.
public protocol Layer: AnyObject {
    func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor
    /// Trainable tensors, with names relative to this layer.
    var namedParameters: [(String, Tensor)] { get }
    /// Non-trainable tensors that are part of the state (running statistics).
    var namedBuffers: [(String, Tensor)] { get }
    /// Integer state (`num_batches_tracked`).
    var namedCounters: [(String, Int)] { get }
    func setCounter(_ name: String, _ value: Int)
    /// The output shape for an input shape, or a thrown error naming both.
    func outputShape(for input: [Int]) throws -> [Int]
}

extension Layer {
    public var namedParameters: [(String, Tensor)] { [] }
    public var namedBuffers: [(String, Tensor)] { [] }
    public var namedCounters: [(String, Int)] { [] }
    public func setCounter(_ name: String, _ value: Int) {}
    public func outputShape(for input: [Int]) throws -> [Int] { input }
}

/// Creates a trainable leaf.
func parameter(_ t: Tensor) -> Tensor { t.requiringGradients() }
