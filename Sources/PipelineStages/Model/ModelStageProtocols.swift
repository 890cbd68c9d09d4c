import NeuralNet
import PipelineGraph
import TensorRuntime

// The contracts of model stages, which losses, sinks, metrics and the commands (`export`,
// `sample`) call on besides `Stage`. The core's own contracts are in PipelineGraph/Stage.

/// A stage holding one network whose weights can be saved and loaded as a PyTorch `state_dict`.
public protocol ModelStage: Stage {
    /// Whether the stage keeps a moving average of its weights.
    var hasMovingAverage: Bool { get }
    /// The weights (or their moving average) under PyTorch `state_dict` names.
    func stateDict(ema: Bool) throws -> SafeTensorsArchive
    /// Loads weights saved by `stateDict` or by PyTorch; throws a `StageProblem` on any mismatch.
    func loadStateDict(_ archive: SafeTensorsArchive) throws
}

/// A model stage that turns latent vectors into images.
public protocol GeneratorStage: ModelStage {
    /// The latent batch the stage was built for, e.g. [64, 100] or [64, 100, 1, 1].
    var latentShape: [Int] { get }
    /// Images for `latent` as a sample evaluation makes them (batch statistics, no updates), from
    /// the moving average or the weights themselves, recorded for gradients (with respect to
    /// `latent` when it requires them: `ganflow project`).
    func sampleForward(_ latent: Tensor, movingAverage: Bool) throws -> Tensor
    /// The classes a class-conditional generator takes (nil: unconditional).
    var classCount: Int? { get }
    /// `sampleForward` for the class labels [N] of the latents (a conditional generator needs
    /// them; an unconditional one takes nil).
    func sampleForward(_ latent: Tensor, labels: Tensor?, movingAverage: Bool) throws -> Tensor
}

extension GeneratorStage {
    public var classCount: Int? { nil }

    public func sampleForward(_ latent: Tensor, labels: Tensor?, movingAverage: Bool) throws -> Tensor {
        guard labels == nil else { throw StageProblem("this generator is not class-conditional; it takes no class") }
        return try sampleForward(latent, movingAverage: movingAverage)
    }

    /// `sampleForward(_:labels:movingAverage:)` without recording gradients.
    public func generate(_ latent: Tensor, labels: Tensor?, movingAverage: Bool) throws -> Tensor {
        try withoutGradients { try sampleForward(latent, labels: labels, movingAverage: movingAverage) }
    }

    /// `sampleForward` without recording gradients.
    public func generate(_ latent: Tensor, movingAverage: Bool) throws -> Tensor {
        try withoutGradients { try sampleForward(latent, movingAverage: movingAverage) }
    }

    /// Images for `latent` as sample evaluations make them: from the moving average when kept.
    public func generate(_ latent: Tensor) throws -> Tensor { try generate(latent, movingAverage: hasMovingAverage) }
}

/// A generator that truncates in its own intermediate latent space (StyleGAN's `w`, towards the
/// mean `w` tracked while training) instead of scaling its input latents towards 0.
public protocol TruncatingGeneratorStage: GeneratorStage {
    /// `sampleForward` with truncation `psi` (1: none) applied inside the network.
    func sampleForward(_ latent: Tensor, movingAverage: Bool, truncation psi: Float) throws -> Tensor
}

/// A generator with per-pixel noise inputs (StyleGAN2's). Its `sampleForward` uses each layer's
/// constant noise, so that an image is a function of its latent alone (grids, interpolation,
/// projection, the export's probe); metrics and `ganflow sample` draw fresh noise for every image
/// instead, as stylegan2-ada-pytorch's metrics (and its `G(z, c)`) do.
public protocol NoisyGeneratorStage: TruncatingGeneratorStage {
    /// `sampleForward` with truncation `psi` and fresh noise for every image, drawn from `rng`.
    func sampleForward(_ latent: Tensor, movingAverage: Bool, truncation psi: Float, noise rng: inout PhiloxRandom) throws -> Tensor
}

/// A generator with an intermediate latent space, StyleGAN's w: a mapping network takes `z` to
/// `w`, and the synthesis network makes images from `w`. Projection and interpolation can work
/// in w (`GeneratorSampler.LatentSpace.w`), as stylegan2-ada-pytorch's projector does.
public protocol WSpaceGeneratorStage: TruncatingGeneratorStage {
    /// The length of one `w`.
    var wDimension: Int { get }
    /// `w` [N, wDim] for latents `z` (untruncated), without gradients.
    func mapping(_ z: Tensor, movingAverage: Bool) throws -> Tensor
    /// Images for `w` [N, wDim] (every layer takes the same `w`), truncated by `psi` towards the
    /// mean w, with constant noise; recorded for gradients when they are on (projection).
    func synthesis(_ w: Tensor, movingAverage: Bool, truncation psi: Float) throws -> Tensor
}

/// A generator whose synthesis takes one style vector per layer, so that layers can take the
/// styles of different latents (StyleGAN's style mixing).
public protocol StyleMixingGeneratorStage: TruncatingGeneratorStage {
    /// Number of style inputs of the synthesis network (coarse first).
    var styleInputs: Int { get }
    /// Images whose style inputs below `crossover` come from `coarse` and the rest from `fine`
    /// (latents of the same shape), both truncated by `psi`, with constant noise.
    func mixedImages(coarse: Tensor, fine: Tensor, crossover: Int, movingAverage: Bool, truncation psi: Float) throws -> Tensor
}

/// A discriminator a loss can call again on new inputs (gradient penalties).
public protocol CriticStage: Stage {
    /// D's outputs for `images`, with batch statistics and no change to any running state (a
    /// class-conditional D reads the labels set with `ClassLabels.with`).
    func critic(_ images: Tensor) throws -> Tensor
    /// The classes a class-conditional D takes (nil: unconditional).
    var classCount: Int? { get }
}

extension CriticStage {
    public var classCount: Int? { nil }
}

/// A discriminator of image pyramids that a loss can call again on new pyramids (gradient
/// penalties over every scale).
public protocol PyramidCriticStage: Stage {
    /// D's outputs for `pyramid` (coarsest first), with no change to any running state.
    func critic(pyramid: [Tensor]) throws -> Tensor
}

/// A model stage whose work is done by a `NetworkCore`: the stage only builds the network.
public protocol NetworkBacked: ModelStage {
    var core: NetworkCore { get }
}

extension NetworkBacked {
    public func outputTypes(for inputs: [String: PortType]) throws -> [String: PortType] { try core.outputTypes(inputs) }
    public func inputsNeeded(for output: String) -> [String]? { core.inputsNeeded(for: output) }
    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] { try core.evaluate(e) }
    public var parameters: [(String, Tensor)] { core.parameters }
    public func checkpointState() throws -> StageState { core.checkpointState() }
    public func restore(_ state: StageState) throws { try core.restore(state) }
    public var hasMovingAverage: Bool { core.ema != nil }
    public func stateDict(ema: Bool) throws -> SafeTensorsArchive { try core.stateDict(ema: ema) }
    public func loadStateDict(_ archive: SafeTensorsArchive) throws { try core.loadStateDict(archive) }
}

extension NetworkBacked where Self: GeneratorStage {
    public func sampleForward(_ latent: Tensor, movingAverage: Bool) throws -> Tensor {
        try core.sampleForward(latent, movingAverage: movingAverage)
    }
    public var classCount: Int? { core.labels?.conditioning.classes }
    public func sampleForward(_ latent: Tensor, labels: Tensor?, movingAverage: Bool) throws -> Tensor {
        try core.sampleForward(latent, labels: labels, movingAverage: movingAverage)
    }
}

extension NetworkBacked where Self: CriticStage {
    public func critic(_ images: Tensor) throws -> Tensor { try core.net.forward(images, mode: .sample) }
    public var classCount: Int? { core.labels?.conditioning.classes }
}
