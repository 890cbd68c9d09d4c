import Foundation
import PipelineGraph
import TensorRuntime

/// The growing schedule of a progressive GAN (Karras et al., ICLR 2018), measured in images shown
/// or in fractions of the run.
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
/// With `stabilizeFraction` and `transitionFraction` instead, the phases are fractions of the run
/// (`Evaluation.progress`: of its steps, or of its `--time-limit` when one is given and comes
/// first), so a run of any length or time reaches `target`: with 4 -> 32, 0.1 and 0.15 fade 32x32
/// in fully at 0.75 of the run and train it for the last quarter. The fractions of the phases
/// before `target` must add up to at most 1.
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
    public static let summary = "Progressive growing: the current resolution, fade-in alpha, batch size and learning rate, by images shown or by fractions of the run."
    public static let configKeys: [ConfigKey] = [
        ConfigKey("start", .int(min: 1), default: .number(4), "First resolution."),
        ConfigKey("target", .int(min: 1), "Final resolution; start times a power of two."),
        ConfigKey("stabilizeKimg", .number(min: 0), default: .null, "Thousands of images trained at each resolution once faded in (600 unless the phases are fractions)."),
        ConfigKey("transitionKimg", .number(min: 0), default: .null, "Thousands of images over which a new resolution fades in, alpha 0 to 1 (600 unless the phases are fractions)."),
        ConfigKey("stabilizeFraction", .number(min: 0, max: 1), default: .null, "Instead of stabilizeKimg: the fraction of the run trained at each resolution once faded in (of its steps, or of its --time-limit)."),
        ConfigKey("transitionFraction", .number(min: 0, max: 1), default: .null, "Instead of transitionKimg: the fraction of the run over which a new resolution fades in."),
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
    /// What the phases are measured in.
    enum Measure {
        /// Images shown.
        case images(stabilize: Int, transition: Int)
        /// Fractions of the run (`Evaluation.progress`).
        case fraction(stabilize: Double, transition: Double)
    }
    let measure: Measure
    let batches: [Int: Int]
    let rates: [Int: Double]
    let batchesPerStep: Int
    private let lock = NSLock()
    /// Images shown before step `step`.
    private var shown = 0
    private var step = 1
    /// The position at `step` (fractions: the images a step shows depend on it).
    private var current: Position

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let start = config.int("start"), target = config.int("target")
        guard target >= start, target % start == 0, (target / start) & (target / start - 1) == 0 else {
            throw StageProblem(key: "target", "the target \(target) must be the start \(start) times a power of two")
        }
        var rs = [start]
        while rs.last! < target { rs.append(rs.last! * 2) }
        resolutions = rs
        measure = try Self.measure(config, levels: rs.count)
        current = Position(resolution: start, alpha: 1, phase: 0)
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

    /// The phase lengths: in images (the default, 600k each) or, with both fraction keys, in
    /// fractions of the run that fit in it.
    static func measure(_ config: StageConfig, levels: Int) throws -> Measure {
        let kimg = (config.optionalDouble("stabilizeKimg"), config.optionalDouble("transitionKimg"))
        let fraction = (config.optionalDouble("stabilizeFraction"), config.optionalDouble("transitionFraction"))
        let start = config.int("start")
        guard fraction.0 != nil || fraction.1 != nil else {
            let s = Int(((kimg.0 ?? 600) * 1000).rounded()), t = Int(((kimg.1 ?? 600) * 1000).rounded())
            if levels > 1 && s + t == 0 {
                throw StageProblem(key: "stabilizeKimg", "stabilizeKimg and transitionKimg are both 0: the schedule would never leave \(start)")
            }
            return .images(stabilize: s, transition: t)
        }
        for (key, given) in [("stabilizeKimg", kimg.0), ("transitionKimg", kimg.1)] where given != nil {
            throw StageProblem(key: key, "give the phases in images (stabilizeKimg, transitionKimg) or in fractions of the run (stabilizeFraction, transitionFraction), not both")
        }
        guard let s = fraction.0, let t = fraction.1 else {
            let missing = fraction.0 == nil ? "stabilizeFraction" : "transitionFraction"
            throw StageProblem(key: missing, "missing: with \(missing == "stabilizeFraction" ? "transitionFraction" : "stabilizeFraction") given, give \(missing) too (0 for none)")
        }
        let growing = Double(levels - 1) * (s + t)
        if levels > 1 && s + t == 0 {
            throw StageProblem(key: "stabilizeFraction", "stabilizeFraction and transitionFraction are both 0: the schedule would never leave \(start)")
        }
        // A little slack for decimal fractions such as 3 x (0.1 + 0.2333...).
        if growing > 1 + 1e-9 {
            throw StageProblem(key: "stabilizeFraction", "\(levels - 1) x (stabilizeFraction \(s) + transitionFraction \(t)) = \(growing) of the run passes before \(config.int("target")) is faded in; at most 1, so that the run reaches it")
        }
        return .fraction(stabilize: s, transition: t)
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

    /// The resolution, alpha and phase after `images` images (phases in images) or at `progress`
    /// of the run (phases in fractions).
    public func position(afterImages images: Int = 0, progress: Double = 0) -> Position {
        switch measure {
        case let .images(s, t): position(at: Double(images), stabilize: Double(s), transition: Double(t))
        // Fractions such as 0.6 / 0.4 miss whole numbers by an ulp: phases start within 1e-9.
        case let .fraction(s, t): position(at: progress, stabilize: s, transition: t, tolerance: 1e-9)
        }
    }

    /// The position `amount` into a schedule of phases of `stabilize` then `transition`; a phase
    /// begins `tolerance` early.
    func position(at amount: Double, stabilize: Double, transition: Double, tolerance: Double = 0) -> Position {
        let last = resolutions.count - 1
        let period = stabilize + transition
        guard last > 0 else { return Position(resolution: resolutions[0], alpha: 1, phase: 0) }
        let level = Int(((amount + tolerance) / period).rounded(.down))
        if level >= last { return Position(resolution: resolutions[last], alpha: 1, phase: 2 * last) }
        let within = amount - Double(level) * period
        if within + tolerance < stabilize { return Position(resolution: resolutions[level], alpha: 1, phase: 2 * level) }
        let alpha = transition > 0 ? Float(min(1, max(0, (within - stabilize) / transition))) : 1
        return Position(resolution: resolutions[level + 1], alpha: alpha, phase: 2 * level + 1)
    }

    /// Images shown before `step` (advancing the count to it, each step showing its resolution's
    /// batch) and the position there, `progress` into the run.
    func advance(to target: Int, progress: Double) -> (images: Int, position: Position) {
        lock.withLock {
            while step < target {
                shown += batches[current.resolution]! * batchesPerStep
                step += 1
                if case .images = measure { current = position(afterImages: shown) }
            }
            if case .fraction = measure { current = position(progress: progress) }
            return (shown, current)
        }
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let (images, p) = advance(to: e.step, progress: e.progress)
        return ["resolution": .integer(p.resolution), "alpha": .scalar(Tensor(p.alpha)), "batch": .integer(batches[p.resolution]!),
                "lr": .scalar(Tensor(Float(rates[p.resolution]!))), "phase": .integer(p.phase),
                "kimg": .scalar(Tensor(Float(Double(images) / 1000)))]
    }

    public func checkpointState() throws -> StageState {
        lock.withLock {
            StageState(values: ["imagesShown": String(shown), "step": String(step), "phase": String(current.phase),
                                "alpha": String(current.alpha), "resolution": String(current.resolution)])
        }
    }

    public func restore(_ state: StageState) throws {
        guard let images = state.values["imagesShown"].flatMap(Int.init), let at = state.values["step"].flatMap(Int.init),
              images >= 0, at >= 1 else {
            throw StageProblem("the checkpoint has no progressive schedule state (imagesShown, step)")
        }
        let p: Position
        switch measure {
        case .images:
            p = position(afterImages: images)
            if let phase = state.values["phase"].flatMap(Int.init), let alpha = state.values["alpha"].flatMap(Float.init),
               phase != p.phase || alpha != p.alpha {
                throw StageProblem("after \(images) images the checkpoint was in phase \(phase) at alpha \(alpha), but this schedule gives phase \(p.phase) at alpha \(p.alpha); was the schedule changed?")
            }
        case .fraction:
            // Where the run stood is recorded: the progress that gave it (the time) is not.
            guard let res = state.values["resolution"].flatMap(Int.init), resolutions.contains(res),
                  let phase = state.values["phase"].flatMap(Int.init), let alpha = state.values["alpha"].flatMap(Float.init) else {
                throw StageProblem("the checkpoint has no resolution of this schedule (\(resolutions.map(String.init).joined(separator: ", ")))")
            }
            p = Position(resolution: res, alpha: alpha, phase: phase)
        }
        lock.withLock {
            shown = images
            step = at
            current = p
        }
    }
}
