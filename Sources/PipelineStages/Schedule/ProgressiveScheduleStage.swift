import Foundation
import PipelineGraph
import TensorRuntime

/// The growing schedule of a progressive GAN (Karras et al., ICLR 2018), measured in images shown.
///
///     "grow": { "type": "schedule.progressive", "start": 4, "target": 32,
///               "stabilizeKimg": 600, "transitionKimg": 600,
///               "batch": 64, "batchByResolution": { "32": 32 }, "lr": 0.001 }
///
/// The run trains at `start` for `stabilizeKimg` thousand images; then each larger resolution is
/// faded in over `transitionKimg` thousand images (`alpha` rising linearly from 0 to 1) and
/// trained for `stabilizeKimg` more, until `target`, where training stays. This is the official
/// code's `lod` schedule (`lod_training_kimg`, `lod_transition_kimg`).
///
/// Outputs every step: `resolution` (integer), `alpha` (scalar), `batch` (integer) and `lr`
/// (scalar) for the current resolution, `phase` (integer: 0 stabilising at `start`, then odd
/// while fading in and even while stabilising each next resolution) and `kimg` (scalar, thousands
/// of images shown). Every evaluation of a step sees the same values; a step adds
/// `batch * batchesPerStep` images. Validation checks the pipeline's shapes at every resolution
/// (with its batch) before the first step. The images shown and the step they belong to are
/// checkpointed (with the phase and alpha, which a resume checks), so a resume continues exactly,
/// mid-transition included.
public final class ProgressiveScheduleStage: ScenarioSource, @unchecked Sendable {
    public static let typeName = "schedule.progressive"
    public static let summary = "Progressive growing: the current resolution, fade-in alpha, batch size and learning rate, by images shown."
    public static let configKeys: [ConfigKey] = [
        ConfigKey("start", .int(min: 1), default: .number(4), "First resolution."),
        ConfigKey("target", .int(min: 1), "Final resolution; start times a power of two."),
        ConfigKey("stabilizeKimg", .number(min: 0), default: .number(600), "Thousands of images trained at each resolution once faded in."),
        ConfigKey("transitionKimg", .number(min: 0), default: .number(600), "Thousands of images over which a new resolution fades in (alpha 0 to 1)."),
        ConfigKey("batch", .int(min: 1), default: .number(64), "Batch size at every resolution not in 'batchByResolution'."),
        ConfigKey("batchByResolution", .any, default: .object([]), "Batch size per resolution, e.g. {\"32\": 32}."),
        ConfigKey("lr", .number(min: 0), default: .number(0.001), "Learning rate at every resolution not in 'lrByResolution'."),
        ConfigKey("lrByResolution", .any, default: .object([]), "Learning rate per resolution, e.g. {\"64\": 0.0015}."),
        ConfigKey("batchesPerStep", .int(min: 1), default: .number(1), "Real batches the discriminator sees per step (its phase's 'repeat'), for counting images."),
    ]

    /// Where the schedule stands at a number of images shown.
    public struct Position: Equatable, Sendable {
        public var resolution: Int
        public var alpha: Float
        public var phase: Int
    }

    public let outputs: [String: PortType] = ["resolution": .integer, "alpha": .scalar, "batch": .integer, "lr": .scalar,
                                              "phase": .integer, "kimg": .scalar]
    public let resolutions: [Int]
    let stabilizeImages: Int
    let transitionImages: Int
    let batches: [Int: Int]
    let rates: [Int: Double]
    let batchesPerStep: Int
    private let lock = NSLock()
    /// Images shown before step `step`.
    private var shown = 0
    private var step = 1

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let start = config.int("start"), target = config.int("target")
        guard target >= start, target % start == 0, (target / start) & (target / start - 1) == 0 else {
            throw StageProblem(key: "target", "the target \(target) must be the start \(start) times a power of two")
        }
        var rs = [start]
        while rs.last! < target { rs.append(rs.last! * 2) }
        resolutions = rs
        stabilizeImages = Int((config.double("stabilizeKimg") * 1000).rounded())
        transitionImages = Int((config.double("transitionKimg") * 1000).rounded())
        if rs.count > 1 && stabilizeImages + transitionImages == 0 {
            throw StageProblem(key: "stabilizeKimg", "stabilizeKimg and transitionKimg are both 0: the schedule would never leave \(start)")
        }
        batchesPerStep = config.int("batchesPerStep")
        let batchMap = try Self.perResolution(config.raw("batchByResolution"), key: "batchByResolution", resolutions: rs)
        var b: [Int: Int] = [:], r: [Int: Double] = [:]
        for (res, v) in batchMap {
            guard v >= 1, v.rounded() == v else { throw StageProblem(key: "batchByResolution", "the batch at \(res) must be a positive integer, not \(v)") }
            b[res] = Int(v)
        }
        for (res, v) in try Self.perResolution(config.raw("lrByResolution"), key: "lrByResolution", resolutions: rs) {
            guard v >= 0 else { throw StageProblem(key: "lrByResolution", "the learning rate at \(res) must not be negative, not \(v)") }
            r[res] = v
        }
        for res in rs {
            b[res] = b[res] ?? config.int("batch")
            r[res] = r[res] ?? config.double("lr")
        }
        batches = b
        rates = r
    }

    /// Reads `{"<resolution>": number, ...}`, naming keys that are not resolutions of the schedule.
    static func perResolution(_ json: JSONValue, key: String, resolutions: [Int]) throws -> [Int: Double] {
        guard let entries = json.objectEntries else {
            throw StageProblem(key: key, "expected an object of resolution to value, e.g. {\"32\": 32}, found \(json.typeName)")
        }
        var out: [Int: Double] = [:]
        for (name, value) in entries {
            guard let res = Int(name), resolutions.contains(res) else {
                throw StageProblem(key: key, "'\(name)' is not a resolution of this schedule (\(resolutions.map(String.init).joined(separator: ", ")))")
            }
            guard case .number(let v) = value else { throw StageProblem(key: key, "the value at \(name) must be a number, found \(value.typeName)") }
            out[res] = v
        }
        return out
    }

    public var scenarios: [(label: String, values: [String: Int])] {
        resolutions.map { ("resolution \($0)", ["resolution": $0, "batch": batches[$0]!]) }
    }

    /// The resolution, alpha and phase after `images` images.
    public func position(afterImages images: Int) -> Position {
        let last = resolutions.count - 1
        let period = stabilizeImages + transitionImages
        guard last > 0 else { return Position(resolution: resolutions[0], alpha: 1, phase: 0) }
        let level = images / period
        if level >= last { return Position(resolution: resolutions[last], alpha: 1, phase: 2 * last) }
        let within = images - level * period
        if within < stabilizeImages { return Position(resolution: resolutions[level], alpha: 1, phase: 2 * level) }
        let alpha = Float(Double(within - stabilizeImages) / Double(transitionImages))
        return Position(resolution: resolutions[level + 1], alpha: alpha, phase: 2 * level + 1)
    }

    /// Images shown before `step` (advancing the count to it) and the position there.
    func advance(to target: Int) -> (images: Int, position: Position) {
        lock.withLock {
            while step < target {
                shown += batches[position(afterImages: shown).resolution]! * batchesPerStep
                step += 1
            }
            return (shown, position(afterImages: shown))
        }
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let (images, p) = advance(to: e.step)
        return ["resolution": .integer(p.resolution), "alpha": .scalar(Tensor(p.alpha)), "batch": .integer(batches[p.resolution]!),
                "lr": .scalar(Tensor(Float(rates[p.resolution]!))), "phase": .integer(p.phase),
                "kimg": .scalar(Tensor(Float(Double(images) / 1000)))]
    }

    public func checkpointState() throws -> StageState {
        lock.withLock {
            let p = position(afterImages: shown)
            return StageState(values: ["imagesShown": String(shown), "step": String(step), "phase": String(p.phase),
                                       "alpha": String(p.alpha), "resolution": String(p.resolution)])
        }
    }

    public func restore(_ state: StageState) throws {
        guard let images = state.values["imagesShown"].flatMap(Int.init), let at = state.values["step"].flatMap(Int.init),
              images >= 0, at >= 1 else {
            throw StageProblem("the checkpoint has no progressive schedule state (imagesShown, step)")
        }
        let p = position(afterImages: images)
        if let phase = state.values["phase"].flatMap(Int.init), let alpha = state.values["alpha"].flatMap(Float.init),
           phase != p.phase || alpha != p.alpha {
            throw StageProblem("after \(images) images the checkpoint was in phase \(phase) at alpha \(alpha), but this schedule gives phase \(p.phase) at alpha \(p.alpha); was the schedule changed?")
        }
        lock.withLock {
            shown = images
            step = at
        }
    }
}
