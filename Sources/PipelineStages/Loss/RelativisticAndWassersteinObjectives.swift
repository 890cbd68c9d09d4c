import TensorRuntime

/// Relativistic average standard GAN (Jolicoeur-Martineau, 2019): D judges whether real images
/// are more realistic than the average fake, and the reverse.
///
///     D: BCE(C(xr) - mean C(xf), 1) + BCE(C(xf) - mean C(xr), 0)
///     G: BCE(C(xf) - mean C(xr), 1) + BCE(C(xr) - mean C(xf), 0)
///
/// with C the logits and each BCE a mean over the batch (the paper's sum of the two terms).
public enum RelativisticAverageLoss: AdversarialObjective {
    public static let typeName = "loss.rasgan"
    public static let summary = "Relativistic average standard GAN loss (RaSGAN) on logits."
    public static let generatorNeedsReal = true
    public static let usesLabels = true
    static func relative(_ real: Tensor, _ fake: Tensor) throws -> (real: Tensor, fake: Tensor) {
        (try real - fake.mean(), try fake - real.mean())
    }
    public static func discriminatorLoss(real: Tensor, fake: Tensor, realLabel: Float) throws -> Tensor {
        let r = try relative(real, fake)
        return try Tensor.binaryCrossEntropyWithLogits(r.real, Tensor(repeating: realLabel, shape: real.shape))
            + Tensor.binaryCrossEntropyWithLogits(r.fake, Tensor(zeros: fake.shape))
    }
    public static func generatorLoss(real: Tensor?, fake: Tensor) throws -> Tensor {
        guard let real else { throw TensorError("loss.rasgan: the generator's loss needs D's output on real images") }
        let r = try relative(real, fake)
        return try Tensor.binaryCrossEntropyWithLogits(r.fake, Tensor(repeating: 1, shape: fake.shape))
            + Tensor.binaryCrossEntropyWithLogits(r.real, Tensor(zeros: real.shape))
    }
}

/// Relativistic average hinge loss (RaHinge, Jolicoeur-Martineau, 2019):
///
///     D: mean relu(1 - (C(xr) - mean C(xf))) + mean relu(1 + (C(xf) - mean C(xr)))
///     G: mean relu(1 + (C(xr) - mean C(xf))) + mean relu(1 - (C(xf) - mean C(xr)))
public enum RelativisticHingeLoss: AdversarialObjective {
    public static let typeName = "loss.rahinge"
    public static let summary = "Relativistic average hinge loss (RaHinge)."
    public static let generatorNeedsReal = true
    public static func discriminatorLoss(real: Tensor, fake: Tensor, realLabel: Float) throws -> Tensor {
        let r = try RelativisticAverageLoss.relative(real, fake)
        return try (1 - r.real).relu().mean() + (1 + r.fake).relu().mean()
    }
    public static func generatorLoss(real: Tensor?, fake: Tensor) throws -> Tensor {
        guard let real else { throw TensorError("loss.rahinge: the generator's loss needs D's output on real images") }
        let r = try RelativisticAverageLoss.relative(real, fake)
        return try (1 + r.real).relu().mean() + (1 - r.fake).relu().mean()
    }
}

/// The Wasserstein critic loss (Arjovsky et al., 2017): D minimises mean C(xf) - mean C(xr),
/// G minimises -mean C(xf). Needs a Lipschitz constraint: a gradient penalty (`loss.wgangp`),
/// R1, or spectral norm.
public enum WassersteinLoss: AdversarialObjective {
    public static let typeName = "loss.wasserstein"
    public static let summary = "Wasserstein critic loss (add a penalty or spectral norm to keep the critic Lipschitz)."
    public static let generatorNeedsReal = false
    public static func discriminatorLoss(real: Tensor, fake: Tensor, realLabel: Float) throws -> Tensor {
        try fake.mean() - real.mean()
    }
    public static func generatorLoss(real: Tensor?, fake: Tensor) throws -> Tensor {
        -fake.mean()
    }
}

/// WGAN-GP (Gulrajani et al., 2017): the Wasserstein loss with the gradient penalty on by default
/// (lambda 10, `penaltyWeight`), which needs `critic`, `realImages` and `fakeImages`.
public enum WGANGPLoss: AdversarialObjective {
    public static let typeName = "loss.wgangp"
    public static let summary = "WGAN-GP: Wasserstein loss plus lambda E[(||grad D(x^)|| - 1)^2] on interpolates (needs critic, realImages, fakeImages)."
    public static let generatorNeedsReal = false
    public static let defaultPenalty = PenaltyKind.gp
    public static func discriminatorLoss(real: Tensor, fake: Tensor, realLabel: Float) throws -> Tensor {
        try WassersteinLoss.discriminatorLoss(real: real, fake: fake, realLabel: realLabel)
    }
    public static func generatorLoss(real: Tensor?, fake: Tensor) throws -> Tensor {
        try WassersteinLoss.generatorLoss(real: real, fake: fake)
    }
}
