import Foundation
import TensorRuntime

/// The top level of a pipeline file, decoded and checked, stages still as raw JSON.
public struct PipelineDocument: Sendable {
    public struct Phase: Sendable {
        /// Stages this phase drives (usually optimizers).
        public var run: [String]
        /// How many times the phase runs per step (e.g. 5 critic updates per generator update).
        public var repeats: Int
        /// Stages whose values this phase takes from the step's earlier phases, with the stages
        /// they read from, instead of evaluating them again (G's images that D was just trained on).
        public var reuse: [String] = []
        public var path: JSONPath
    }

    public var file: String
    public var name: String
    public var seed: UInt64
    /// Length of the run in steps (`steps`), or nil when given in epochs.
    public var steps: Int?
    public var epochs: Int?
    public var output: String?
    /// What convolutions and matrix products compute in (the runner sets it around each stage).
    public var precision: ComputePrecision = .fp32
    public var stageOrder: [String]
    public var stages: [String: JSONValue]
    public var schedule: [Phase]
    public var checkpointEvery: Int
    public var checkpointKeep: Int
    public var logEvery: Int
    /// How a run under `mpirun` shares its work between ranks.
    public var distributed: DistributedOptions
    /// The whole document, for writing the resolved pipeline into the run directory.
    public var json: JSONValue
    public var locations: [JSONPath: SourceLocation]

    /// Reads a pipeline file, applies `--set` overrides, and checks the top level, collecting every
    /// problem it can find there. `lengthGiven`: the run's length comes from elsewhere (`--steps`),
    /// so the file may leave out both 'steps' and 'epochs'.
    public static func load(file: String, overrides: [String] = [], lengthGiven: Bool = false) throws -> PipelineDocument {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) else {
            throw PipelineErrors([PipelineError("file.missing", file: file, "no such file")])
        }
        guard !isDirectory.boolValue, let data = FileManager.default.contents(atPath: file) else {
            throw PipelineErrors([PipelineError("file.unreadable", file: file, "cannot read the pipeline file")])
        }
        return try parse(bytes: [UInt8](data), file: file, overrides: overrides, lengthGiven: lengthGiven)
    }

    public static func parse(_ text: String, file: String, overrides: [String] = []) throws -> PipelineDocument {
        try parse(bytes: Array(text.utf8), file: file, overrides: overrides)
    }

    public static func parse(bytes: [UInt8], file: String, overrides: [String] = [], lengthGiven: Bool = false) throws -> PipelineDocument {
        var parsed: ParsedJSON
        do {
            parsed = try JSONParser.parse(bytes: bytes)
        } catch {
            throw PipelineErrors([PipelineError("json.syntax", file: file, location: error.location,
                                                "malformed JSON: \(error.message)")])
        }
        if !overrides.isEmpty {
            guard parsed.value.objectEntries != nil else {
                throw PipelineErrors([PipelineError("document.type", file: file, "a pipeline is a JSON object")])
            }
            try Overrides.apply(overrides, to: &parsed.value, file: file)
        }
        return try decode(parsed, file: file, lengthGiven: lengthGiven)
    }

    /// Checks the top level against `keys`, collecting every problem, and decodes it. Stages stay
    /// raw JSON for the builder. `lengthGiven`: as in `load`.
    public static func decode(_ parsed: ParsedJSON, file: String, lengthGiven: Bool = false) throws -> PipelineDocument {
        let root = parsed.value
        guard root.objectEntries != nil else {
            throw PipelineErrors([PipelineError("document.type", file: file, path: .root, location: parsed.locations[.root],
                                                "a pipeline is a JSON object, found \(root.typeName)")])
        }
        let validator = ConfigValidator(file: file, locations: parsed.locations)
        var problems = validator.unknownKeys(in: root, declared: keys, path: .root)
        let (values, keyProblems) = checkKeys(root, validator)
        for (key, found) in keyProblems {
            problems += found
            // The run length is reported beside the keys that give it.
            if key == "epochs" { problems += checkRunLength(root, validator, lengthGiven: lengthGiven) }
        }
        if !problems.isEmpty { throw PipelineErrors(problems) }
        return document(values, file: file, json: root, locations: parsed.locations)
    }

    /// Every declared key's value (defaults filled in), and each key's problems in declaration order.
    static func checkKeys(_ root: JSONValue, _ validator: ConfigValidator) -> ([String: JSONValue], [(String, [PipelineError])]) {
        var values: [String: JSONValue] = [:]
        var problems: [(String, [PipelineError])] = []
        for key in keys {
            let (v, found) = validator.value(of: key, in: root, at: .root)
            values[key.name] = v
            problems.append((key.name, found))
        }
        return (values, problems)
    }

    /// Exactly one of 'steps' and 'epochs', or neither when the command line gives the length.
    static func checkRunLength(_ root: JSONValue, _ validator: ConfigValidator, lengthGiven: Bool) -> [PipelineError] {
        switch (root["steps"], root["epochs"]) {
        case (nil, nil) where !lengthGiven:
            return [validator.error("key.missing", .root, "missing the run length: give 'steps' or 'epochs' (or --steps when running it)")]
        case (_?, _?):
            return [validator.error("key.conflict", .root / "epochs", "give either 'steps' or 'epochs', not both")]
        default:
            return []
        }
    }

    /// The document from values that `keys` accepted.
    static func document(_ values: [String: JSONValue], file: String, json: JSONValue,
                         locations: [JSONPath: SourceLocation]) -> PipelineDocument {
        func int(_ v: JSONValue?) -> Int? { if case .number(let n)? = v { return Int(n) }; return nil }
        func string(_ v: JSONValue?) -> String? { if case .string(let s)? = v { return s }; return nil }
        // The validator filled in every default, so sections and their keys are all present.
        let stages = values["stages"]?.objectEntries ?? []
        var schedule: [Phase] = []
        if case .array(let phases)? = values["schedule"] {
            for (i, phase) in phases.enumerated() {
                let run: [String] = switch phase["run"] {
                case .string(let s)?: [s]
                case .array(let ids)?: ids.compactMap(string)
                default: []
                }
                let reuse: [String] = if case .array(let ids)? = phase["reuse"] { ids.compactMap(string) } else { [] }
                schedule.append(Phase(run: run, repeats: int(phase["repeat"])!, reuse: reuse, path: .root / "schedule" / i))
            }
        }
        let checkpoint = values["checkpoint"], log = values["log"], distributedValues = values["distributed"]
        var distributed = DistributedOptions()
        distributed.syncBatchNorm = distributedValues?["syncBatchNorm"] == .bool(true)
        distributed.bucketKiB = int(distributedValues?["bucketKiB"])!
        return PipelineDocument(
            file: file, name: string(values["name"]) ?? "", seed: UInt64(int(values["seed"]) ?? 0),
            steps: int(values["steps"]), epochs: int(values["epochs"]), output: string(values["output"]),
            precision: string(values["precision"]).flatMap(ComputePrecision.init(rawValue:)) ?? .fp32,
            stageOrder: stages.map(\.0), stages: Dictionary(stages, uniquingKeysWith: { first, _ in first }),
            schedule: schedule, checkpointEvery: int(checkpoint?["every"])!, checkpointKeep: int(checkpoint?["keep"])!,
            logEvery: int(log?["every"])!, distributed: distributed, json: json, locations: locations)
    }
}

/// The `distributed` section: how data-parallel ranks (`mpirun -np N ganflow run`) cooperate.
/// A single process ignores it.
///
///     "distributed": { "syncBatchNorm": true, "bucketKiB": 4096 }
public struct DistributedOptions: Sendable, Equatable {
    /// Batch norm uses the statistics of the global batch (every rank's shard) while training,
    /// so N ranks compute what one process computes; false keeps each rank's statistics local.
    public var syncBatchNorm = false
    /// Gradients are allreduced in buckets of about this many KiB, each sent as soon as its
    /// gradients are known during backward.
    public var bucketKiB = 4096
    public init() {}
}
