import TensorRuntime

/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and L2
/// weight decay, following `torch.optim.SGD`.
///
///     g = grad + weightDecay * p
///     buf = g on the first step, else momentum * buf + (1 - dampening) * g
///     g = nesterov ? g + momentum * buf : buf          (when momentum != 0)
///     p -= learningRate * g
public final class SGD: SlotOptimizer, Optimizer {
    public var learningRate: Double
    /// Fixed at creation, since it decides whether a momentum buffer exists.
    public let momentum: Double
    public let dampening: Double
    public let nesterov: Bool
    public var weightDecay: Double

    public init(
        parameters: [(name: String, tensor: Tensor)], learningRate: Double, momentum: Double = 0,
        dampening: Double = 0, nesterov: Bool = false, weightDecay: Double = 0
    ) throws {
        try checkHyperparameter("sgd", "learningRate", learningRate, atLeast: 0)
        try checkHyperparameter("sgd", "momentum", momentum, atLeast: 0)
        try checkHyperparameter("sgd", "weightDecay", weightDecay, atLeast: 0)
        if nesterov && (momentum <= 0 || dampening != 0) {
            throw OptimizerError("sgd: nesterov needs momentum > 0 and dampening 0")
        }
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        try super.init(table: ParameterTable(parameters, slots: momentum != 0 ? ["momentum_buffer"] : [], optimizer: "sgd"))
    }

    public func step(gradients: [Tensor]) throws {
        let grads = try table.checked(gradients)
        let useMomentum = momentum != 0
        let first = stepCount == 0
        let nesterov = self.nesterov
        let wd = Float(weightDecay), mu = Float(momentum), keep = Float(1 - dampening)
        table.updateParameters {
            for (k, entry) in table.entries.enumerated() {
                let negLR = Float(-rate(learningRate, parameter: k))
                let p = entry.tensor.data, g = grads[k].data, n = entry.tensor.count
                guard useMomentum else {
                    for i in 0..<n { p[i] = p[i] + negLR * (g[i] + wd * p[i]) }
                    continue
                }
                let buf = table.slot(0) + table.offsets[k]
                for i in 0..<n {
                    let d = g[i] + wd * p[i]
                    let b = first ? d : buf[i] * mu + keep * d
                    buf[i] = b
                    p[i] = p[i] + negLR * (nesterov ? d + mu * b : b)
                }
            }
        }
        stepCount += 1
    }
}

/// Throws unless `value` is finite and at least `minimum`.
func checkHyperparameter(_ optimizer: String, _ name: String, _ value: Double, atLeast minimum: Double) throws {
    guard value.isFinite, value >= minimum else {
        throw OptimizerError("\(optimizer): \(name) must be at least \(minimum), got \(value)")
    }
}

/// Throws unless `value` lies in [0, 1).
func checkUnitInterval(_ optimizer: String, _ name: String, _ value: Double) throws {
    guard value >= 0, value < 1 else {
        throw OptimizerError("\(optimizer): \(name) must be in [0, 1), got \(value)")
    }
}
