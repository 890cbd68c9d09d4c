import Foundation
import TensorRuntime

/// An exponential moving average of a network's weights, kept in a second network of the same
/// architecture (for sampling from a smoother generator, as in ProGAN and StyleGAN).
///
/// After each optimizer step on `source`, `update()` sets every parameter of `average` to
///
///     average = decay * average + (1 - decay) * source
///
/// (PyTorch's `avg.lerp_(p, 1 - decay)`), and copies buffers (batch-norm running statistics,
/// spectral-norm vectors) and counters as they are, since they are not trained.
public final class ExponentialMovingAverage {
    public let decay: Double
    public let source: any Layer
    public let average: any Layer
    /// Updates applied since creation (or as restored).
    public var updates = 0
    /// StyleGAN2's ramp-up: the half-life of the average, in steps, is at most `rampUp` times the
    /// steps taken so far, so early averages forget the random initial weights quickly
    /// (stylegan2-ada-pytorch's `ema_rampup`, 0.05). nil: always `decay`.
    public var rampUp: Double?

    /// The decay of the next update: `decay`, or with `rampUp` the decay whose half-life is
    /// `min(halfLife(decay), rampUp * updates)` steps (0 at the first update: a copy).
    public var currentDecay: Double {
        guard let rampUp else { return decay }
        let halfLife = min(log(0.5) / log(decay), rampUp * Double(updates))
        return halfLife > 0 ? min(decay, pow(0.5, 1 / halfLife)) : 0
    }

    /// Starts `average` as an exact copy of `source`; their parameters and buffers must have the
    /// same names and shapes.
    public init(of source: any Layer, into average: any Layer, decay: Double) throws {
        guard decay >= 0 && decay < 1 else { throw OptimizerError("ema: decay must be in [0, 1), got \(decay)") }
        let a = source.namedParameters + source.namedBuffers, b = average.namedParameters + average.namedBuffers
        guard a.map(\.0) == b.map(\.0), zip(a, b).allSatisfy({ $0.1.shape == $1.1.shape }) else {
            throw OptimizerError("ema: the average's parameters do not match the source's")
        }
        self.decay = decay
        self.source = source
        self.average = average
        try copy()
    }

    /// Makes the average equal to the source (after loading weights from a file).
    public func copy() throws {
        for ((_, s), (_, t)) in zip(source.namedParameters + source.namedBuffers, average.namedParameters + average.namedBuffers) {
            try t.assign(s)
        }
        for (name, value) in source.namedCounters { average.setCounter(name, value) }
    }

    /// One averaging step.
    public func update() throws {
        let d = currentDecay
        let keep = Float(d), take = Float(1 - d)
        // Element by element, split over the kernel threads like the optimizers' updates (each
        // element is computed the same way whatever the split).
        Profiler.measure("ema update") {
            for ((_, s), (_, t)) in zip(source.namedParameters, average.namedParameters) {
                // Parameters are created contiguous and updated in place, so they stay so.
                precondition(s.isContiguous && t.isContiguous, "ema: non-contiguous parameter")
                let p = s.data, dst = t.data
                withExtendedLifetime((s, t)) {
                    ParallelLoop.chunks(t.count, bytes: t.count * 12) { range in
                        for i in range { dst[i] = keep * dst[i] + take * p[i] }
                    }
                }
            }
        }
        for ((_, s), (_, t)) in zip(source.namedBuffers, average.namedBuffers) { try t.assign(s) }
        for (name, value) in source.namedCounters { average.setCounter(name, value) }
        updates += 1
    }
}
