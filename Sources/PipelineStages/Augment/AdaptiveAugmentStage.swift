import PipelineGraph
import TensorRuntime

/// ADA's controller (Karras et al., 2020): moves an adaptive `augment.diff` stage's probability p
/// towards a target of the discriminator's overfitting signal r_t = E[sign(D(real))].
///
///     "ada": { "type": "augment.ada", "logits": "D.real", "augment": "aug", "target": 0.6 }
///     "schedule": [ { "run": ["optD", "ada"] }, { "run": "optG" } ]
///
/// Drive it in the discriminator's phase. Every `interval` evaluations it takes r_t over the real
/// logits seen since the last adjustment and moves p by sign(r_t - target) * images / `speed`, so p
/// can cross [0, 1] in `speed` real images. Outputs `p` and `signal` (r_t so far) are logged; its
/// accumulators are checkpointed here, p with the augment stage. In a data-parallel run the
/// signs and images are the whole batch's, summed over the ranks.
public final class AdaptiveAugmentStage: CommittingStage, @unchecked Sendable {
    public static let typeName = "augment.ada"
    public static let summary = "ADA controller: adjusts an adaptive augment.diff's p towards a target of E[sign(D(real))]; outputs 'p', 'signal'."
    public static let configKeys: [ConfigKey] = [
        ConfigKey("logits", .wire, "The discriminator's outputs on (augmented) real images."),
        ConfigKey("augment", .stageRef, "The augment.diff stage (with 'adaptive': true) whose probability this adjusts."),
        ConfigKey("target", .number(min: 0, max: 1), default: .number(0.6), "Target of r_t = E[sign(D(real))]."),
        ConfigKey("interval", .int(min: 1), default: .number(4), "Evaluations between adjustments."),
        ConfigKey("speed", .int(min: 1), default: .number(500_000), "Real images over which p can move from 0 to 1."),
    ]

    public let outputs: [String: PortType] = ["update": .effect, "p": .scalar, "signal": .scalar]
    let augment: DiffAugmentStage
    let target: Double
    let interval: Int
    let speed: Double
    var signSum: Double = 0
    var images = 0
    var evaluations = 0
    private var pendingSigns: (sum: Double, count: Int)?

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let id = config.string("augment")
        guard let stage = context.stage(id) as? DiffAugmentStage else {
            throw StageProblem(key: "augment", "stage '\(id)' is not an augment.diff stage")
        }
        guard stage.adaptive else {
            throw StageProblem(key: "augment", "stage '\(id)' is not adaptive; set \"adaptive\": true on it")
        }
        guard case .tensor? = inputs["logits"] else {
            throw StageProblem(key: "logits", "expected the discriminator's output tensor, found \(inputs["logits"].map { "\($0)" } ?? "nothing")")
        }
        augment = stage
        target = config.double("target")
        interval = config.int("interval")
        speed = Double(config.int("speed"))
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let logits = try e.tensor("logits").scalars
        // Under mpirun each rank sees its share of the batch. The signs and images are summed over
        // the ranks, so every rank takes the whole batch's r_t and moves p alike, as one process
        // would (and as stylegan2-ada-pytorch gathers its statistics over the GPUs).
        var totals = [logits.reduce(0.0) { $0 + ($1 > 0 ? 1 : $1 < 0 ? -1 : 0) }, Double(logits.count)]
        try e.communicator.allreduce(&totals, operation: "ADA signal (\(e.stageID))")
        let (sum, count) = (totals[0], Int(totals[1]))
        pendingSigns = (sum, count)
        let signal = (signSum + sum) / Double(max(images + count, 1))
        return ["update": .effect, "p": .scalar(Tensor(Float(augment.probability))), "signal": .scalar(Tensor(Float(signal)))]
    }

    public func commit() throws {
        guard let (sum, count) = pendingSigns else { return }
        pendingSigns = nil
        signSum += sum
        images += count
        evaluations += 1
        if evaluations % interval == 0 {
            let rt = signSum / Double(max(images, 1))
            let direction: Double = rt > target ? 1 : rt < target ? -1 : 0
            augment.probability += direction * Double(images) / speed
            signSum = 0
            images = 0
        }
    }

    public func checkpointState() throws -> StageState {
        StageState(values: ["signSum": String(signSum), "images": String(images), "evaluations": String(evaluations)])
    }

    public func restore(_ state: StageState) throws {
        guard let s = state.values["signSum"].flatMap(Double.init), let n = state.values["images"].flatMap(Int.init),
              let k = state.values["evaluations"].flatMap(Int.init) else {
            throw StageProblem("the checkpoint has no ADA accumulators (signSum, images, evaluations)")
        }
        signSum = s
        images = n
        evaluations = k
    }
}
