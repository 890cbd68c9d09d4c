import PipelineGraph
import TensorRuntime

/// A GAN objective on the discriminator's outputs for real and generated images.
public protocol AdversarialObjective: Sendable {
    static var typeName: String { get }
    static var summary: String { get }
    /// Whether the generator's loss also reads D's output on real images (relativistic losses).
    static var generatorNeedsReal: Bool { get }
    static func discriminatorLoss(real: Tensor, fake: Tensor) throws -> Tensor
    static func generatorLoss(real: Tensor?, fake: Tensor) throws -> Tensor
}

/// A loss stage: inputs `real` and `fake` (D's outputs), outputs `discriminator` and `generator`.
///
///     "loss": { "type": "loss.nonsaturating", "real": "D.real", "fake": "D.fake" }
///
/// Asking only for `generator` evaluates only D's fake branch (unless the objective is relativistic).
public final class AdversarialLossStage<Objective: AdversarialObjective>: Stage, @unchecked Sendable {
    public static var typeName: String { Objective.typeName }
    public static var summary: String { Objective.summary + " Outputs 'discriminator' and 'generator'." }
    public static var configKeys: [ConfigKey] {
        [
            ConfigKey("real", .wire, "D's output on real images."),
            ConfigKey("fake", .wire, "D's output on generated images."),
        ]
    }

    public let outputs: [String: PortType] = ["discriminator": .scalar, "generator": .scalar]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        for port in ["real", "fake"] {
            guard case .tensor = inputs[port] else {
                throw StageProblem(key: port, "expected D's output tensor, found \(inputs[port].map { "\($0)" } ?? "nothing")")
            }
        }
    }

    public func inputsNeeded(for output: String) -> [String]? {
        output == "generator" && !Objective.generatorNeedsReal ? ["fake"] : ["real", "fake"]
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        var out: [String: PortValue] = [:]
        let fake = try e.tensor("fake")
        if e.outputs.contains("discriminator") {
            out["discriminator"] = .scalar(try Objective.discriminatorLoss(real: try e.tensor("real"), fake: fake))
        }
        if e.outputs.contains("generator") {
            let real = Objective.generatorNeedsReal ? try e.tensor("real") : nil
            out["generator"] = .scalar(try Objective.generatorLoss(real: real, fake: fake))
        }
        return out
    }
}

/// Goodfellow et al.'s non-saturating loss: D minimises BCE(real, 1) + BCE(fake, 0), G minimises BCE(fake, 1).
public enum NonSaturatingLoss: AdversarialObjective {
    public static let typeName = "loss.nonsaturating"
    public static let summary = "Non-saturating GAN loss on logits (stable BCE)."
    public static let generatorNeedsReal = false
    public static func discriminatorLoss(real: Tensor, fake: Tensor) throws -> Tensor {
        try Tensor.binaryCrossEntropyWithLogits(real, Tensor(repeating: 1, shape: real.shape))
            + Tensor.binaryCrossEntropyWithLogits(fake, Tensor(zeros: fake.shape))
    }
    public static func generatorLoss(real: Tensor?, fake: Tensor) throws -> Tensor {
        try Tensor.binaryCrossEntropyWithLogits(fake, Tensor(repeating: 1, shape: fake.shape))
    }
}

/// The original minimax loss: G minimises -BCE(fake, 0) = log(1 - sigmoid(fake)).
public enum MinimaxLoss: AdversarialObjective {
    public static let typeName = "loss.minimax"
    public static let summary = "Minimax GAN loss on logits (saturates early in training; for comparison)."
    public static let generatorNeedsReal = false
    public static func discriminatorLoss(real: Tensor, fake: Tensor) throws -> Tensor {
        try NonSaturatingLoss.discriminatorLoss(real: real, fake: fake)
    }
    public static func generatorLoss(real: Tensor?, fake: Tensor) throws -> Tensor {
        -(try Tensor.binaryCrossEntropyWithLogits(fake, Tensor(zeros: fake.shape)))
    }
}

/// Least-squares GAN (Mao et al., 2017): D minimises ((real - 1)^2 + fake^2) / 2, G minimises (fake - 1)^2 / 2.
public enum LeastSquaresLoss: AdversarialObjective {
    public static let typeName = "loss.lsgan"
    public static let summary = "Least-squares GAN loss (a = 0, b = c = 1)."
    public static let generatorNeedsReal = false
    public static func discriminatorLoss(real: Tensor, fake: Tensor) throws -> Tensor {
        try ((real - 1).square().mean() + fake.square().mean()) * 0.5
    }
    public static func generatorLoss(real: Tensor?, fake: Tensor) throws -> Tensor {
        (fake - 1).square().mean() * 0.5
    }
}

/// Hinge loss (Lim and Ye, 2017; Miyato et al., 2018): D minimises relu(1 - real) + relu(1 + fake), G minimises -fake.
public enum HingeLoss: AdversarialObjective {
    public static let typeName = "loss.hinge"
    public static let summary = "Hinge GAN loss."
    public static let generatorNeedsReal = false
    public static func discriminatorLoss(real: Tensor, fake: Tensor) throws -> Tensor {
        try (1 - real).relu().mean() + (1 + fake).relu().mean()
    }
    public static func generatorLoss(real: Tensor?, fake: Tensor) throws -> Tensor {
        -fake.mean()
    }
}
