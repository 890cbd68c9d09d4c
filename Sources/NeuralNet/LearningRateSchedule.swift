#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The learning rate as a function of the number of optimizer steps already taken.
///
/// `rate(atStep: k)` is the rate for the step that follows `k` completed steps, matching a PyTorch
/// scheduler stepped once after each `optimizer.step()`.
public struct LearningRateSchedule: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The base rate throughout.
        case constant
        /// The base rate times `gamma` for every `stepSize` completed steps (`StepLR`).
        case step(stepSize: Int, gamma: Double)
        /// The base rate until `start`, then falling linearly to `finalFactor` times it at `end`,
        /// and held there (the classic "decay to zero over the second half" of pix2pix and CycleGAN).
        case linearDecay(start: Int, end: Int, finalFactor: Double)
    }

    public var baseRate: Double
    public var kind: Kind

    /// A schedule; throws for a non-positive step size or an end before the start.
    public init(baseRate: Double, kind: Kind = .constant) throws {
        switch kind {
        case .constant:
            break
        case .step(let stepSize, let gamma):
            guard stepSize > 0 else { throw OptimizerError("schedule: stepSize must be positive, got \(stepSize)") }
            guard gamma >= 0 else { throw OptimizerError("schedule: gamma must be at least 0, got \(gamma)") }
        case .linearDecay(let start, let end, let finalFactor):
            guard start >= 0, end > start else {
                throw OptimizerError("schedule: linear decay needs 0 <= start < end, got start \(start) and end \(end)")
            }
            guard finalFactor >= 0 else { throw OptimizerError("schedule: finalFactor must be at least 0, got \(finalFactor)") }
        }
        self.baseRate = baseRate
        self.kind = kind
    }

    /// The rate for the step after `step` completed steps.
    public func rate(atStep step: Int) -> Double {
        switch kind {
        case .constant:
            return baseRate
        case .step(let stepSize, let gamma):
            return baseRate * pow(gamma, Double(max(step, 0) / stepSize))
        case .linearDecay(let start, let end, let finalFactor):
            if step <= start { return baseRate }
            if step >= end { return baseRate * finalFactor }
            let progress = Double(step - start) / Double(end - start)
            return baseRate * (1 + (finalFactor - 1) * progress)
        }
    }

    /// Sets `optimizer`'s learning rate for its next step.
    public func apply(to optimizer: some Optimizer) {
        optimizer.learningRate = rate(atStep: optimizer.stepCount)
    }
}

