/// Inverted dropout.
extension Tensor {
    /// Zeroes each element with probability `probability` and scales the survivors by
    /// 1 / (1 - probability), so the expected value is unchanged; the identity when not `training`.
    ///
    /// The mask takes one uniform draw per element, in row-major order, from `rng`, so a given
    /// generator state always gives the same mask. The gradient is multiplied by the same constant
    /// mask. With probability 1 every element is zeroed, as in PyTorch.
    public func dropout(probability: Float, training: Bool, using rng: inout PhiloxRandom) throws -> Tensor {
        guard probability >= 0, probability <= 1 else {
            throw TensorError("dropout: probability \(probability) is outside [0, 1]")
        }
        if !training || probability == 0 { return self }
        let mask = Tensor(uninitialized: shape)
        let scale: Float = probability == 1 ? 0 : 1 / (1 - probability)
        let m = mask.data
        for i in 0..<count { m[i] = rng.nextUniform() < probability ? 0 : scale }
        return try self * mask
    }
}
