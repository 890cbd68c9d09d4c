import TensorRuntime

/// RMSprop (`torch.optim.RMSprop`), optionally centered and with momentum.
///
///     g = grad + weightDecay * p
///     s = alpha * s + (1 - alpha) * g * g
///     centered: a = lerp(a, g, 1 - alpha);  r = sqrt(s - a * a) + eps,  else r = sqrt(s) + eps
///     momentum > 0: buf = momentum * buf + g / r;  p -= learningRate * buf
///     otherwise:    p -= learningRate * g / r
public final class RMSprop: SlotOptimizer, Optimizer {
    public var learningRate: Double
    public var alpha: Double
    public var eps: Double
    public var weightDecay: Double
    /// Fixed at creation, since they decide which buffers exist.
    public let momentum: Double
    public let centered: Bool
    private let gradAvgSlot: Int?
    private let momentumSlot: Int?

    public init(
        parameters: [(name: String, tensor: Tensor)], learningRate: Double = 1e-2, alpha: Double = 0.99,
        eps: Double = 1e-8, weightDecay: Double = 0, momentum: Double = 0, centered: Bool = false
    ) throws {
        try checkHyperparameter("rmsprop", "learningRate", learningRate, atLeast: 0)
        try checkHyperparameter("rmsprop", "alpha", alpha, atLeast: 0)
        try checkHyperparameter("rmsprop", "eps", eps, atLeast: 0)
        try checkHyperparameter("rmsprop", "weightDecay", weightDecay, atLeast: 0)
        try checkHyperparameter("rmsprop", "momentum", momentum, atLeast: 0)
        self.learningRate = learningRate
        self.alpha = alpha
        self.eps = eps
        self.weightDecay = weightDecay
        self.momentum = momentum
        self.centered = centered
        var slots = ["square_avg"]
        if momentum > 0 { slots.append("momentum_buffer") }
        if centered { slots.append("grad_avg") }
        momentumSlot = slots.firstIndex(of: "momentum_buffer")
        gradAvgSlot = slots.firstIndex(of: "grad_avg")
        try super.init(table: ParameterTable(parameters, slots: slots, optimizer: "rmsprop"))
    }

    public func step(gradients: [Tensor]) throws {
        let grads = try table.checked(gradients)
        let a = Float(alpha), w = Float(1 - alpha), epsF = Float(eps), wd = Float(weightDecay)
        let mu = Float(momentum)
        let lerpFromStart = abs(w) < 0.5
        let squares = table.slot(0)
        // Unused buffers alias the squares; the flags below keep them from being touched.
        let averages = gradAvgSlot.map(table.slot) ?? squares
        let buffers = momentumSlot.map(table.slot) ?? squares
        let centered = gradAvgSlot != nil, useMomentum = momentumSlot != nil
        table.updateParameters {
            for (k, entry) in table.entries.enumerated() {
                let o = table.offsets[k]
                let segment = RMSpropSegment(
                    p: entry.tensor.data, g: grads[k].data, s: squares + o, ga: averages + o, buf: buffers + o,
                    n: entry.tensor.count, alpha: a, w: w, eps: epsF, wd: wd, mu: mu, negLR: Float(-rate(learningRate, parameter: k)),
                    lerpFromStart: lerpFromStart)
                // Literal flags give the vectoriser one branch-free loop per variant.
                switch (centered, useMomentum) {
                case (false, false): segment.update(centered: false, momentum: false)
                case (false, true): segment.update(centered: false, momentum: true)
                case (true, false): segment.update(centered: true, momentum: false)
                case (true, true): segment.update(centered: true, momentum: true)
                }
            }
        }
        stepCount += 1
    }
}

/// One parameter's slice of an RMSprop step.
private struct RMSpropSegment {
    let p, g, s, ga, buf: UnsafeMutablePointer<Float>
    let n: Int
    let alpha, w, eps, wd, mu, negLR: Float
    let lerpFromStart: Bool

    @inline(__always)
    func update(centered: Bool, momentum: Bool) {
        for i in 0..<n {
            let gi = g[i] + wd * p[i]
            let si = s[i] * alpha + w * gi * gi
            s[i] = si
            var r: Float
            if centered {
                let ai = lerpFromStart ? ga[i] + w * (gi - ga[i]) : gi - (gi - ga[i]) * (1 - w)
                ga[i] = ai
                r = (si + -1 * ai * ai).squareRoot()
            } else {
                r = si.squareRoot()
            }
            r += eps
            if momentum {
                let b = buf[i] * mu + gi / r
                buf[i] = b
                p[i] = p[i] + negLR * b
            } else {
                p[i] = p[i] + negLR * gi / r
            }
        }
    }
}
