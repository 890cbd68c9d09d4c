import TensorRuntime

/// Batch normalisation over channels of [N, C] or [N, C, H, W] (PyTorch's `BatchNorm1d/2d`).
///
/// Inside `BatchNorm.synchronized(over:)`, training forwards that update the running statistics
/// use the statistics of every rank's batch together (synchronized batch norm).
public final class BatchNorm: ActivationFusing {
    public let weight: Tensor
    public let bias: Tensor
    public let statistics: BatchStatistics

    public init(_ features: Int, momentum: Float = 0.1, eps: Float = 1e-5) {
        weight = parameter(Tensor(repeating: 1, shape: [features]))
        bias = parameter(Tensor(zeros: [features]))
        statistics = BatchStatistics(features, momentum: momentum, eps: eps)
    }

    /// The forward followed by a leaky ReLU of `leakySlope` (0: a ReLU) in the same passes, when
    /// it is given (`Tensor.batchNorm(...leakySlope:)`); `Sequential` fuses an `Activation` that
    /// follows a batch norm this way.
    public func forward(_ x: Tensor, mode: ForwardMode, leakySlope: Float?) throws -> Tensor {
        try statistics.normalize(x, mode: mode, weight: weight, bias: bias, leakySlope: leakySlope)
    }

    /// The communicator of the innermost `synchronized(over:)` on this thread.
    private static let synchronizer = ThreadLocal<(any Communicator)?> { nil }

    static var currentSynchronizer: (any Communicator)? { synchronizer.value }

    /// Runs `body` with every batch norm layer it trains synchronized over `communicator`
    /// (nil: local statistics). Per thread, like `GradMode`: a model runs on the thread that
    /// evaluates its stage.
    public static func synchronized<T>(over communicator: (any Communicator)?, _ body: () throws -> T) rethrows -> T {
        try synchronizer.with(communicator, body)
    }

    public var namedParameters: [(String, Tensor)] { [("weight", weight), ("bias", bias)] }
    public var namedBuffers: [(String, Tensor)] { statistics.namedBuffers }
    public var namedCounters: [(String, Int)] { statistics.namedCounters }
    public func setCounter(_ name: String, _ value: Int) { statistics.setCounter(name, value) }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count >= 2, input[1] == weight.shape[0] else {
            throw TensorError("BatchNorm(\(weight.shape[0])): input \(describe(input)) must have \(weight.shape[0]) channels")
        }
        return input
    }
}

/// A batch norm's running statistics (PyTorch's `running_mean`, `running_var`,
/// `num_batches_tracked`) and the normalisation that uses and updates them: the batch's statistics
/// in training (synchronized inside `BatchNorm.synchronized(over:)`), the running ones otherwise.
/// `BatchNorm` and `ConditionalBatchNorm` normalise with one of these.
public final class BatchStatistics {
    public let runningMean: Tensor
    public let runningVar: Tensor
    public private(set) var batchesTracked = 0
    public let momentum: Float
    public let eps: Float

    public init(_ features: Int, momentum: Float = 0.1, eps: Float = 1e-5) {
        runningMean = Tensor(zeros: [features])
        runningVar = Tensor(repeating: 1, shape: [features])
        self.momentum = momentum
        self.eps = eps
    }

    /// `x` normalised, then scaled by `weight` and shifted by `bias` per channel when given, then
    /// a leaky ReLU of `leakySlope` when given. A training forward that updates statistics
    /// counts a batch and moves the running statistics.
    public func normalize(_ x: Tensor, mode: ForwardMode, weight: Tensor?, bias: Tensor?, leakySlope: Float? = nil) throws -> Tensor {
        let update = mode.training && mode.updateStatistics
        if update { batchesTracked += 1 }
        return try x.batchNorm(weight: weight, bias: bias,
                               runningMean: update || !mode.training ? runningMean : nil,
                               runningVar: update || !mode.training ? runningVar : nil,
                               training: mode.training, momentum: momentum, eps: eps,
                               synchronizer: update ? BatchNorm.currentSynchronizer : nil, leakySlope: leakySlope)
    }

    public var namedBuffers: [(String, Tensor)] { [("running_mean", runningMean), ("running_var", runningVar)] }
    public var namedCounters: [(String, Int)] { [("num_batches_tracked", batchesTracked)] }
    public func setCounter(_ name: String, _ value: Int) { if name == "num_batches_tracked" { batchesTracked = value } }
}
