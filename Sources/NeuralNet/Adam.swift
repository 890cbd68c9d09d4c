#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorRuntime

/// Adam (`torch.optim.Adam`), with weight decay as an L2 term added to the gradient.
///
///     g = grad + weightDecay * p
///     m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
///     p -= learningRate / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
///
/// `eps` is added after the square root and the bias correction, as PyTorch does.
public class Adam: SlotOptimizer, Optimizer {
    public var learningRate: Double
    public var beta1: Double
    public var beta2: Double
    public var eps: Double
    public var weightDecay: Double
    /// "adam" or "adamw", for messages and the profiler.
    private let name: String
    /// Weight decay as AdamW's multiplicative shrink rather than Adam's L2 term.
    private let decoupled: Bool

    public convenience init(
        parameters: [(name: String, tensor: Tensor)], learningRate: Double = 1e-3,
        beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0
    ) throws {
        try self.init(name: "adam", decoupled: false, parameters: parameters, learningRate: learningRate,
                      beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay)
    }

    init(
        name: String, decoupled: Bool, parameters: [(name: String, tensor: Tensor)], learningRate: Double,
        beta1: Double, beta2: Double, eps: Double, weightDecay: Double
    ) throws {
        try validateAdam(name, learningRate, beta1, beta2, eps, weightDecay)
        self.name = name
        self.decoupled = decoupled
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        try super.init(table: ParameterTable(parameters, slots: ["exp_avg", "exp_avg_sq"], optimizer: name))
    }

    public func step(gradients: [Tensor]) throws {
        let grads = try table.checked(gradients)
        stepCount += 1
        Profiler.measure(name) {
            table.updateParameters {
                adamUpdate(table, grads, step: stepCount, rates: table.entries.indices.map { rate(learningRate, parameter: $0) }, beta1: beta1,
                           beta2: beta2, eps: eps, l2: decoupled ? 0 : weightDecay, decoupled: decoupled ? weightDecay : 0)
            }
        }
    }
}

/// AdamW (`torch.optim.AdamW`): Adam with decoupled weight decay.
///
/// Before the Adam update, `p *= 1 - learningRate * weightDecay`; the gradient itself is not
/// changed, so the decay is not rescaled by the second moment as Adam's L2 term is.
public final class AdamW: Adam {
    public convenience init(
        parameters: [(name: String, tensor: Tensor)], learningRate: Double = 1e-3,
        beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 1e-2
    ) throws {
        try self.init(name: "adamw", decoupled: true, parameters: parameters, learningRate: learningRate,
                      beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay)
    }
}

private func validateAdam(
    _ name: String, _ learningRate: Double, _ beta1: Double, _ beta2: Double, _ eps: Double, _ weightDecay: Double
) throws {
    try checkHyperparameter(name, "learningRate", learningRate, atLeast: 0)
    try checkUnitInterval(name, "beta1", beta1)
    try checkUnitInterval(name, "beta2", beta2)
    try checkHyperparameter(name, "eps", eps, atLeast: 0)
    try checkHyperparameter(name, "weightDecay", weightDecay, atLeast: 0)
}

/// One Adam step over every parameter, parameter `k` at `rates[k]`; `step` counts this one. Scalars
/// are derived in Double and rounded once, as PyTorch derives them from Python floats.
private func adamUpdate(
    _ table: ParameterTable, _ grads: [Tensor], step: Int, rates: [Double], beta1: Double,
    beta2: Double, eps: Double, l2: Double, decoupled: Double
) {
    let t = Double(step)
    let biasCorrection1 = 1 - pow(beta1, t)
    let biasCorrection2 = 1 - pow(beta2, t)
    let bc2Sqrt = Float(biasCorrection2.squareRoot())
    let w1 = Float(1 - beta1), b2 = Float(beta2), w2 = Float(1 - beta2)
    let epsF = Float(eps), wd = Float(l2)
    // PyTorch's lerp switches formula at weight 0.5 to stay exact at both ends.
    let lerpFromStart = abs(w1) < 0.5
    let m = table.slot(0), v = table.slot(1)
    for (k, entry) in table.entries.enumerated() {
        let p = entry.tensor.data, g = grads[k].data, n = entry.tensor.count
        let mk = m + table.offsets[k], vk = v + table.offsets[k]
        let rate = rates[k]
        let negStepSize = Float(-rate / biasCorrection1), decay = Float(1 - rate * decoupled)
        // Each element on its own: split over the kernel threads (7 floats of traffic each).
        ParallelLoop.chunks(n, bytes: n * 28) { range in
            for i in range {
                let pi = p[i] * decay
                let gi = g[i] + wd * pi
                let mi = lerpFromStart ? mk[i] + w1 * (gi - mk[i]) : gi - (gi - mk[i]) * (1 - w1)
                let vi = vk[i] * b2 + w2 * gi * gi
                mk[i] = mi
                vk[i] = vi
                p[i] = pi + negStepSize * mi / (vi.squareRoot() / bc2Sqrt + epsF)
            }
        }
    }
}
