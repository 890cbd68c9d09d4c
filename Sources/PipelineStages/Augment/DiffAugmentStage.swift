import Foundation
import PipelineGraph
import TensorRuntime

/// Differentiable augmentation (DiffAugment) of every input through one policy, optionally with an
/// adaptive probability (ADA).
///
///     "aug": { "type": "augment.diff", "inputs": { "real": "data.images", "fake": "G.images" },
///              "policy": "color,translation,cutout" }
///
/// One output per input, of the same shape. Real and generated images go through the same policy,
/// and gradients flow through it to the generator. Each operation is applied to each image with
/// probability `probability`; with `adaptive`, an `augment.ada` stage moves that probability
/// (output `p`, checkpointed) towards its overfitting target.
public final class DiffAugmentStage: Stage, @unchecked Sendable {
    public static let typeName = "augment.diff"
    public static let summary = "DiffAugment (flip, brightness, saturation, contrast, translation, cutout) on each input; optionally adaptive (ADA)."
    public static let configKeys: [ConfigKey] = [
        ConfigKey("inputs", .wireMap, "Image batches to augment; one output of the same name each."),
        ConfigKey("policy", .string(), default: .string("color,translation,cutout"),
                  "Comma-separated operations: color (= brightness, saturation, contrast), flip, brightness, saturation, contrast, translation, cutout."),
        ConfigKey("probability", .number(min: 0, max: 1), default: .number(1), "Chance each operation is applied to each image (with 'adaptive', where p starts)."),
        ConfigKey("adaptive", .bool, default: .bool(false), "Let an augment.ada stage adjust the probability (ADA); adds output 'p'."),
        ConfigKey("translation", .number(min: 0, max: 1), default: .number(0.125), "Largest shift, as a fraction of the image size."),
        ConfigKey("cutout", .number(min: 0, max: 1), default: .number(0.5), "Side of the zeroed square, as a fraction of the image size."),
        ConfigKey("shareDraws", .bool, default: .bool(false), "Draw the same random parameters for every input (false: independent draws per input, as DiffAugment)."),
    ]

    let policy: AugmentPolicy
    let names: [String]
    let adaptive: Bool
    let shareDraws: Bool
    private let p: Locked<Double>
    public let outputs: [String: PortType]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        policy = try AugmentPolicy(config.string("policy"), translation: config.double("translation"), cutout: config.double("cutout"))
        names = (config.raw("inputs").objectEntries ?? []).map(\.0)
        guard !names.isEmpty else { throw StageProblem(key: "inputs", "give at least one image input to augment") }
        adaptive = config.bool("adaptive")
        shareDraws = config.bool("shareDraws")
        p = Locked(config.double("probability"))
        outputs = try DiffAugmentStage.types(inputs, names: names, adaptive: adaptive)
    }

    static func types(_ inputs: [String: PortType], names: [String], adaptive: Bool) throws -> [String: PortType] {
        var out: [String: PortType] = [:]
        for name in names {
            guard let t = inputs[name], let s = t.shape, s.count == 4 else {
                throw StageProblem(key: name, "expected images [N, C, H, W], found \(inputs[name].map { "\($0)" } ?? "nothing")")
            }
            if names.contains("p") && adaptive { throw StageProblem(key: "p", "an input may not be named 'p': that is the probability output") }
            out[name] = .tensor(s)
        }
        if adaptive { out["p"] = .scalar }
        return out
    }

    public func outputTypes(for inputs: [String: PortType]) throws -> [String: PortType] {
        try DiffAugmentStage.types(inputs, names: names, adaptive: adaptive)
    }

    public func inputsNeeded(for output: String) -> [String]? { output == "p" ? [] : [output] }

    /// The probability each operation is applied with.
    public var probability: Double {
        get { p.withLock { $0 } }
        set { p.withLock { $0 = min(max(newValue, 0), 1) } }
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let probability = self.probability
        var out: [String: PortValue] = [:]
        for name in names where e.outputs.contains(name) {
            var rng = e.random(shareDraws ? "draws" : name)
            out[name] = .tensor(try policy.apply(try e.tensor(name), p: probability, using: &rng))
        }
        if adaptive { out["p"] = .scalar(Tensor(Float(probability))) }
        return out
    }

    public func checkpointState() throws -> StageState {
        adaptive ? StageState(values: ["p": String(probability)]) : StageState()
    }

    public func restore(_ state: StageState) throws {
        guard adaptive else { return }
        guard let saved = state.values["p"].flatMap(Double.init) else {
            throw StageProblem("the checkpoint has no augmentation probability 'p'")
        }
        probability = saved
    }
}
