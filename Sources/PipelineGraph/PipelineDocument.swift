import Foundation

/// The top level of a pipeline file, decoded and checked, stages still as raw JSON.
public struct PipelineDocument: Sendable {
    public struct Phase: Sendable {
        /// Stages this phase drives (usually optimizers).
        public var run: [String]
        /// How many times the phase runs per step (e.g. 5 critic updates per generator update).
        public var repeats: Int
        public var path: JSONPath
    }

    public var file: String
    public var name: String
    public var seed: UInt64
    /// Length of the run in steps (`steps`), or nil when given in epochs.
    public var steps: Int?
    public var epochs: Int?
    public var output: String?
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

    static let topLevelKeys = ["$schema", "name", "seed", "steps", "epochs", "output", "stages", "schedule",
                               "checkpoint", "log", "description", "distributed"]

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

    public static func decode(_ parsed: ParsedJSON, file: String, lengthGiven: Bool = false) throws -> PipelineDocument {
        var problems: [PipelineError] = []
        func problem(_ code: String, _ path: JSONPath, _ message: String, suggestion: String? = nil) {
            problems.append(PipelineError(code, file: file, path: path, location: parsed.locations[path], message,
                                          suggestion: suggestion))
        }
        let root = parsed.value
        guard let entries = root.objectEntries else {
            throw PipelineErrors([PipelineError("document.type", file: file, path: .root, location: parsed.locations[.root],
                                                "a pipeline is a JSON object, found \(root.typeName)")])
        }
        for (key, _) in entries where !topLevelKeys.contains(key) {
            problem("key.unknown", .root / key, "unknown key '\(key)'", suggestion: didYouMean(key, among: topLevelKeys))
        }

        var name = ""
        switch root["name"] {
        case .string(let s)? where !s.isEmpty: name = s
        case .string?: problem("key.type", .root / "name", "the name must not be empty")
        case nil: problem("key.missing", .root, "missing key 'name'")
        case let v?: problem("key.type", .root / "name", "expected a non-empty string, found \(v.typeName)")
        }

        func integer(_ key: String, min: Int, at path: JSONPath) -> Int? {
            guard let v = root[key] else { return nil }
            guard case .number(let n) = v, n.rounded() == n, n >= Double(min), n < 1e15 else {
                problem("key.type", path, "expected an integer >= \(min), found \(v == .null ? "null" : v.serialized(indent: nil))")
                return nil
            }
            return Int(n)
        }
        let seed = integer("seed", min: 0, at: .root / "seed") ?? 0
        let steps = integer("steps", min: 1, at: .root / "steps")
        let epochs = integer("epochs", min: 1, at: .root / "epochs")
        if root["steps"] == nil && root["epochs"] == nil && !lengthGiven {
            problem("key.missing", .root, "missing the run length: give 'steps' or 'epochs' (or --steps when running it)")
        }
        if root["steps"] != nil && root["epochs"] != nil {
            problem("key.conflict", .root / "epochs", "give either 'steps' or 'epochs', not both")
        }

        var output: String?
        if let v = root["output"] {
            if case .string(let s) = v, !s.isEmpty { output = s } else {
                problem("key.type", .root / "output", "expected a directory path string, found \(v.typeName)")
            }
        }

        func subObject(_ key: String, keys: [String: Int]) -> [String: Int] {
            var result: [String: Int] = [:]
            guard let v = root[key] else { return result }
            guard let e = v.objectEntries else {
                problem("key.type", .root / key, "expected an object, found \(v.typeName)")
                return result
            }
            for (k, value) in e {
                guard let minimum = keys[k] else {
                    problem("key.unknown", .root / key / k, "unknown key '\(k)'", suggestion: didYouMean(k, among: keys.keys))
                    continue
                }
                guard case .number(let n) = value, n.rounded() == n, n >= Double(minimum), n < 1e12 else {
                    problem("key.type", .root / key / k, "expected an integer >= \(minimum), found \(value.serialized(indent: nil))")
                    continue
                }
                result[k] = Int(n)
            }
            return result
        }
        let checkpoint = subObject("checkpoint", keys: ["every": 1, "keep": 1])
        let log = subObject("log", keys: ["every": 1])
        var distributed = DistributedOptions()
        if let v = root["distributed"] {
            if let e = v.objectEntries {
                for (k, value) in e {
                    let path = JSONPath.root / "distributed" / k
                    switch (k, value) {
                    case ("syncBatchNorm", .bool(let b)): distributed.syncBatchNorm = b
                    case ("syncBatchNorm", _): problem("key.type", path, "expected true or false, found \(value.serialized(indent: nil))")
                    case ("bucketKiB", .number(let n)) where n.rounded() == n && n >= 1 && n <= 1_048_576:
                        distributed.bucketKiB = Int(n)
                    case ("bucketKiB", _): problem("key.type", path, "expected an integer from 1 to 1048576, found \(value.serialized(indent: nil))")
                    default:
                        problem("key.unknown", path, "unknown key '\(k)'", suggestion: didYouMean(k, among: ["syncBatchNorm", "bucketKiB"]))
                    }
                }
            } else {
                problem("key.type", .root / "distributed", "expected an object like {\"syncBatchNorm\": true}, found \(v.typeName)")
            }
        }

        var stageOrder: [String] = []
        var stages: [String: JSONValue] = [:]
        switch root["stages"] {
        case nil: problem("key.missing", .root, "missing key 'stages'")
        case .object(let e)?:
            if e.isEmpty { problem("stages.empty", .root / "stages", "a pipeline needs at least one stage") }
            for (id, v) in e {
                if id.isEmpty || id.contains(".") || id.contains(" ") {
                    problem("stage.id", .root / "stages" / id, "stage id '\(id)' must be non-empty, without '.' or spaces")
                }
                stageOrder.append(id)
                stages[id] = v
            }
        case let v?: problem("key.type", .root / "stages", "expected an object of stages, found \(v.typeName)")
        }

        var schedule: [Phase] = []
        switch root["schedule"] {
        case nil: problem("key.missing", .root, "missing key 'schedule' (the phases of one step)")
        case .array(let items)?:
            if items.isEmpty { problem("schedule.empty", .root / "schedule", "the schedule needs at least one phase") }
            for (i, item) in items.enumerated() {
                let p = JSONPath.root / "schedule" / i
                guard let e = item.objectEntries else {
                    problem("key.type", p, "expected a phase object like {\"run\": [\"optD\"]}, found \(item.typeName)")
                    continue
                }
                var run: [String] = []
                var repeats = 1
                for (k, v) in e {
                    switch k {
                    case "run":
                        switch v {
                        case .string(let s): run = [s]
                        case .array(let names) where names.allSatisfy({ if case .string = $0 { return true }; return false }):
                            run = names.compactMap { if case .string(let s) = $0 { return s }; return nil }
                        default: problem("key.type", p / "run", "expected a stage id or a list of stage ids, found \(v.typeName)")
                        }
                    case "repeat":
                        if case .number(let n) = v, n.rounded() == n, n >= 1, n < 1e6 { repeats = Int(n) } else {
                            problem("key.type", p / "repeat", "expected an integer >= 1, found \(v.serialized(indent: nil))")
                        }
                    default:
                        problem("key.unknown", p / k, "unknown key '\(k)'", suggestion: didYouMean(k, among: ["run", "repeat"]))
                    }
                }
                if run.isEmpty && e.contains(where: { $0.0 == "run" }) == false {
                    problem("key.missing", p, "missing key 'run'")
                }
                schedule.append(Phase(run: run, repeats: repeats, path: p))
            }
        case let v?: problem("key.type", .root / "schedule", "expected an array of phases, found \(v.typeName)")
        }

        if !problems.isEmpty { throw PipelineErrors(problems) }
        return PipelineDocument(
            file: file, name: name, seed: UInt64(seed), steps: steps, epochs: epochs, output: output,
            stageOrder: stageOrder, stages: stages, schedule: schedule,
            checkpointEvery: checkpoint["every"] ?? 500, checkpointKeep: checkpoint["keep"] ?? 3,
            logEvery: log["every"] ?? 50, distributed: distributed, json: root, locations: parsed.locations)
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
