import NeuralNet
import PipelineGraph
import TensorRuntime

/// A GAN objective on the discriminator's outputs for real and generated images.
public protocol AdversarialObjective: Sendable {
    static var typeName: String { get }
    static var summary: String { get }
    /// Whether the generator's loss also reads D's output on real images (relativistic losses).
    static var generatorNeedsReal: Bool { get }
    /// Whether D is trained towards labels (BCE), so that one-sided label smoothing applies.
    static var usesLabels: Bool { get }
    /// The gradient penalty a stage of this type adds unless its config says otherwise.
    static var defaultPenalty: PenaltyKind { get }
    /// D's loss; `realLabel` is the target for real images (1, or less with label smoothing).
    static func discriminatorLoss(real: Tensor, fake: Tensor, realLabel: Float) throws -> Tensor
    static func generatorLoss(real: Tensor?, fake: Tensor) throws -> Tensor
}

extension AdversarialObjective {
    public static var usesLabels: Bool { false }
    public static var defaultPenalty: PenaltyKind { .none }
    public static func discriminatorLoss(real: Tensor, fake: Tensor) throws -> Tensor {
        try discriminatorLoss(real: real, fake: fake, realLabel: 1)
    }
}

/// A gradient penalty added to the discriminator's loss.
public enum PenaltyKind: String, Sendable, CaseIterable {
    case none
    /// WGAN-GP: weight * E[(||grad D(x^)|| - 1)^2] on interpolates of real and fake images.
    case gp
    /// R1: weight / 2 * E[||grad D(x)||^2] on real images.
    case r1
}

/// A loss stage: inputs `real` and `fake` (D's outputs), outputs `discriminator` and `generator`.
///
///     "loss": { "type": "loss.nonsaturating", "real": "D.real", "fake": "D.fake" }
///
/// Asking only for `generator` evaluates only D's fake branch (unless the objective is relativistic).
///
/// Every objective can add a gradient penalty to D's loss, which needs D itself and the images:
///
///     "loss": { "type": "loss.wgangp", "real": "D.real", "fake": "D.fake",
///               "critic": "D", "realImages": "data.images", "fakeImages": "G.images" }
///
/// The penalty is computed in training evaluations only; with `penaltyEvery: k` it is computed on
/// every k-th evaluation of D's loss and weighted by k (lazy regularisation, as StyleGAN2). With a
/// penalty, output `penalty` is the last unweighted penalty (0 before the first). `drift` adds
/// drift * E[D(real)^2] (ProGAN's 0.001 keeps a Wasserstein critic's outputs near 0).
public final class AdversarialLossStage<Objective: AdversarialObjective>: Stage, @unchecked Sendable {
    public static var typeName: String { Objective.typeName }
    public static var summary: String { Objective.summary + " Outputs 'discriminator' and 'generator'." }
    public static var scalarKind: ScalarKind { .objective }
    public static var configKeys: [ConfigKey] {
        [
            ConfigKey("real", .wire, "D's output on real images."),
            ConfigKey("fake", .wire, "D's output on generated images."),
            ConfigKey("labelSmoothing", .number(min: 0, max: 0.5), default: .number(0),
                      "One-sided label smoothing: D's target for real images is 1 minus this (BCE losses)."),
            ConfigKey("penalty", .string(choices: PenaltyKind.allCases.map(\.rawValue)), default: .string(Objective.defaultPenalty.rawValue),
                      "Gradient penalty on D: none, gp (WGAN-GP) or r1."),
            ConfigKey("penaltyWeight", .number(min: 0), default: .number(10), "lambda of WGAN-GP, gamma of R1."),
            ConfigKey("penaltyEvery", .int(min: 1), default: .number(1), "Compute the penalty every this many D losses, weighted by it (lazy R1)."),
            ConfigKey("drift", .number(min: 0), default: .number(0), "Weight of E[D(real)^2] added to D's loss (ProGAN: 0.001)."),
            ConfigKey("critic", .stageRef, default: .null, "The discriminator stage, for penalties."),
            ConfigKey("realImages", .wire, default: .null, "The real images D saw, for penalties."),
            ConfigKey("fakeImages", .wire, default: .null, "The generated images D saw, for WGAN-GP."),
            ConfigKey("realLabels", .wire, default: .null,
                      "The class labels [N] of the real images, for penalties on a class-conditional D (WGAN-GP's interpolates take them too)."),
        ]
    }

    /// `discriminator` and `generator`, and `penalty` when there is one.
    public let outputs: [String: PortType]
    let realLabel: Float
    let penalty: PenaltyKind
    let penaltyWeight: Float
    let penaltyEvery: Int
    let drift: Float
    let critic: (any CriticStage)?
    /// A discriminator of pyramids (MSG-GAN): penalties interpolate and differentiate every scale.
    let pyramidCritic: (any PyramidCriticStage)?
    /// Whether the critic is class-conditional: penalties then call it with `realLabels`.
    let criticTakesLabels: Bool
    /// D losses evaluated in training, for lazy penalties; checkpointed.
    var penaltyClock = 0
    var lastPenalty: Float = 0

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        for port in ["real", "fake"] {
            guard case .tensor = inputs[port] else {
                throw StageProblem(key: port, "expected D's output tensor, found \(inputs[port].map { "\($0)" } ?? "nothing")")
            }
        }
        let smoothing = config.double("labelSmoothing")
        if smoothing > 0 && !Objective.usesLabels {
            throw StageProblem(key: "labelSmoothing", "\(Objective.typeName) has no labels to smooth; use a BCE loss (loss.nonsaturating, loss.minimax, loss.rasgan)")
        }
        realLabel = Float(1 - smoothing)
        penalty = PenaltyKind(rawValue: config.string("penalty"))!
        penaltyWeight = config.float("penaltyWeight")
        penaltyEvery = config.int("penaltyEvery")
        drift = config.float("drift")
        outputs = ["discriminator": .scalar, "generator": .scalar].merging(penalty == .none ? [:] : ["penalty": .scalar]) { a, _ in a }
        if penalty == .none {
            critic = nil
            pyramidCritic = nil
            criticTakesLabels = false
        } else {
            guard let id = config.optionalString("critic") else {
                throw StageProblem(key: "critic", "penalty '\(penalty.rawValue)' needs the discriminator: set 'critic' to its stage id")
            }
            let c = context.stage(id)
            critic = c as? any CriticStage
            pyramidCritic = c as? any PyramidCriticStage
            guard critic != nil || pyramidCritic != nil else {
                throw StageProblem(key: "critic", "stage '\(id)' is not a discriminator")
            }
            // A class-conditional D scores an image for its class: the penalty's calls need the labels.
            criticTakesLabels = (c as? any NetworkBacked)?.core.labels != nil
            if criticTakesLabels {
                guard !config.isNull("realLabels") else {
                    throw StageProblem(key: "realLabels", "the critic '\(id)' is class-conditional: penalty '\(penalty.rawValue)' needs 'realLabels', the class labels of 'realImages' (e.g. \"data.labels\")")
                }
                let batch = inputs["realImages"]?.shape?.first
                guard let labels = inputs["realLabels"]?.shape, labels.count == 1, batch == nil || labels[0] == batch else {
                    throw StageProblem(key: "realLabels", "expected class labels [\(batch.map(String.init) ?? "N")] of the real images, found \(inputs["realLabels"].map { "\($0)" } ?? "nothing")")
                }
            } else if !config.isNull("realLabels") {
                throw StageProblem(key: "realLabels", "the critic '\(id)' is not class-conditional; remove 'realLabels'")
            }
            let real: [[Int]]
            switch inputs["realImages"] {
            case .tensor(let s)? where critic != nil: real = [s]
            case .pyramid(let ss)? where pyramidCritic != nil: real = ss
            case let t:
                if critic != nil { throw StageProblem(key: "realImages", "penalty '\(penalty.rawValue)' needs 'realImages' (the images D saw)") }
                throw StageProblem(key: "realImages", "penalty '\(penalty.rawValue)' needs 'realImages', the pyramid D saw (found \(t.map { "\($0)" } ?? "nothing"))")
            }
            if penalty == .gp {
                let fake: [[Int]]
                switch inputs["fakeImages"] {
                case .tensor(let s)? where critic != nil: fake = [s]
                case .pyramid(let ss)? where pyramidCritic != nil: fake = ss
                default: throw StageProblem(key: "fakeImages", "WGAN-GP needs 'fakeImages' (the generated images D saw)")
                }
                guard fake == real else {
                    throw StageProblem(key: "fakeImages", "generated images \(fake.map { describe($0) }.joined(separator: " ")) and real images \(real.map { describe($0) }.joined(separator: " ")) differ in shape")
                }
            }
        }
    }

    /// `body` with the real images' labels set for a class-conditional critic's layers.
    private func withRealLabels<T>(_ e: Evaluation, _ body: () throws -> T) throws -> T {
        try ClassLabels.with(criticTakesLabels ? try e.tensor("realLabels") : nil, body)
    }

    public func inputsNeeded(for output: String) -> [String]? {
        switch output {
        case "generator": return Objective.generatorNeedsReal ? ["real", "fake"] : ["fake"]
        default:
            let labels = criticTakesLabels ? ["realLabels"] : []
            switch penalty {
            case .none: return ["real", "fake"]
            case .r1: return ["real", "fake", "realImages"] + labels
            case .gp: return ["real", "fake", "realImages", "fakeImages"] + labels
            }
        }
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        var out: [String: PortValue] = [:]
        let fake = try e.tensor("fake")
        if e.outputs.contains("discriminator") || e.outputs.contains("penalty") {
            let real = try e.tensor("real")
            var loss = try Objective.discriminatorLoss(real: real, fake: fake, realLabel: realLabel)
            if drift > 0 { loss = try loss + real.square().mean() * drift }
            if penalty != .none, e.mode == .train {
                penaltyClock += 1
                if (penaltyClock - 1) % penaltyEvery == 0 {
                    let p: Tensor
                    switch penalty {
                    case .gp:
                        var rng = e.random("epsilon")
                        if let critic {
                            let realImages = try e.tensor("realImages")
                            let epsilon = Tensor(randomUniform: [realImages.shape[0]], using: &rng)
                            p = try withRealLabels(e) {
                                try GradientPenalty.wgangp(critic: { try critic.critic($0) }, real: realImages, fake: try e.tensor("fakeImages"), epsilon: epsilon)
                            }
                        } else {
                            let realImages = try e.pyramid("realImages")
                            let epsilon = Tensor(randomUniform: [realImages[0].shape[0]], using: &rng)
                            p = try GradientPenalty.wgangp(critic: { try pyramidCritic!.critic(pyramid: $0) }, real: realImages,
                                                           fake: try e.pyramid("fakeImages"), epsilon: epsilon)
                        }
                        loss = try loss + p * (penaltyWeight * Float(penaltyEvery))
                    case .r1:
                        if let critic {
                            p = try withRealLabels(e) { try GradientPenalty.r1(critic: { try critic.critic($0) }, real: try e.tensor("realImages")) }
                        } else {
                            p = try GradientPenalty.r1(critic: { try pyramidCritic!.critic(pyramid: $0) }, real: try e.pyramid("realImages"))
                        }
                        loss = try loss + p * (penaltyWeight / 2 * Float(penaltyEvery))
                    case .none:
                        p = Tensor(0)
                    }
                    lastPenalty = p.item()
                }
            }
            out["discriminator"] = .scalar(loss)
            if penalty != .none { out["penalty"] = .scalar(Tensor(lastPenalty)) }
        }
        if e.outputs.contains("generator") {
            let real = Objective.generatorNeedsReal ? try e.tensor("real") : nil
            out["generator"] = .scalar(try Objective.generatorLoss(real: real, fake: fake))
        }
        return out
    }

    public func checkpointState() throws -> StageState {
        penalty == .none ? StageState() : StageState(values: ["penaltyClock": String(penaltyClock), "lastPenalty": String(lastPenalty)])
    }

    public func restore(_ state: StageState) throws {
        penaltyClock = state.values["penaltyClock"].flatMap(Int.init) ?? 0
        lastPenalty = state.values["lastPenalty"].flatMap(Float.init) ?? 0
    }
}

/// Goodfellow et al.'s non-saturating loss: D minimises BCE(real, 1) + BCE(fake, 0), G minimises BCE(fake, 1).
public enum NonSaturatingLoss: AdversarialObjective {
    public static let typeName = "loss.nonsaturating"
    public static let summary = "Non-saturating GAN loss on logits (stable BCE)."
    public static let generatorNeedsReal = false
    public static let usesLabels = true
    public static func discriminatorLoss(real: Tensor, fake: Tensor, realLabel: Float) throws -> Tensor {
        try Tensor.binaryCrossEntropyWithLogits(real, Tensor(repeating: realLabel, shape: real.shape))
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
    public static let usesLabels = true
    public static func discriminatorLoss(real: Tensor, fake: Tensor, realLabel: Float) throws -> Tensor {
        try NonSaturatingLoss.discriminatorLoss(real: real, fake: fake, realLabel: realLabel)
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
    public static func discriminatorLoss(real: Tensor, fake: Tensor, realLabel: Float) throws -> Tensor {
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
    public static func discriminatorLoss(real: Tensor, fake: Tensor, realLabel: Float) throws -> Tensor {
        try (1 - real).relu().mean() + (1 + fake).relu().mean()
    }
    public static func generatorLoss(real: Tensor?, fake: Tensor) throws -> Tensor {
        -fake.mean()
    }
}
