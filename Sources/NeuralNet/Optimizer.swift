import TensorRuntime

/// Updates named parameters in place from their gradients.
///
/// Parameters are identified by dotted paths (`generator.block2.conv.weight`) so state can be
/// saved, restored and reported per parameter. `step(gradients:)` writes straight into the
/// parameters' storage without recording anything for autograd; the moments and buffers live in
/// one flat buffer per kind, updated in a single pass per parameter with no per-element closures.
/// Hyperparameters are `Double`, like PyTorch's Python floats, so derived coefficients such as
/// `1 - beta2` round the way they do there.
public protocol Optimizer: AnyObject {
    /// The parameters, in the order `step(gradients:)` expects their gradients.
    var parameters: [(name: String, tensor: Tensor)] { get }
    /// The step size used by the next `step`; schedules and per-resolution rates set it.
    var learningRate: Double { get set }
    /// Steps taken since creation, the last `resetState()`, or as restored by `importState`.
    var stepCount: Int { get }

    /// Applies one update; `gradients[i]` must have the shape of `parameters[i]`.
    func step(gradients: [Tensor]) throws
    /// A copy of the optimizer's state: tensors named `<prefix>.<parameter>.<slot>` (PyTorch's slot
    /// names, such as `exp_avg`) and the step count as `<prefix>.step`.
    func exportState(prefix: String) -> OptimizerState
    /// Restores state exported by an optimizer of the same kind and configuration over parameters
    /// with the same names and shapes; anything missing, misshapen or unexpected is an error.
    func importState(_ state: OptimizerState, prefix: String) throws
    /// Forgets all moments and buffers and the step count, as if newly created.
    func resetState()
}

extension Optimizer {
    public func exportState() -> OptimizerState { exportState(prefix: "optimizer") }
    public func importState(_ state: OptimizerState) throws { try importState(state, prefix: "optimizer") }
}

/// An optimizer's state as named tensors and integer counters, ready for a checkpoint.
public struct OptimizerState: @unchecked Sendable {
    public var tensors: [String: Tensor]
    public var integers: [String: Int]

    public init(tensors: [String: Tensor] = [:], integers: [String: Int] = [:]) {
        self.tensors = tensors
        self.integers = integers
    }
}

/// A bad optimizer configuration, gradient list or saved state.
public struct OptimizerError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
