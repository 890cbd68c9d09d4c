import TensorRuntime

/// Gaussian noise added to a discriminator's inputs while training (Sonderby et al., 2016;
/// Arjovsky and Bottou, 2017), so that real and generated distributions overlap early on.
///
/// The standard deviation falls linearly from `std` at step 1 to 0 at `steps` (nil: constant).
struct InstanceNoise: Sendable {
    var std: Float
    var steps: Int?

    func std(at step: Int) -> Float {
        guard let steps else { return std }
        return std * max(0, 1 - Float(step - 1) / Float(steps))
    }

    func apply(_ x: Tensor, step: Int, rng: inout PhiloxRandom) throws -> Tensor {
        let s = std(at: step)
        guard s > 0 else { return x }
        return try x + Tensor(randomNormal: x.shape, std: s, using: &rng)
    }
}
