import TensorRuntime

extension PipelineDocument {
    /// The top level of a pipeline file, declared as a stage declares its keys. The decoder, the
    /// `--set` overrides, `ganflow stages` and `ganflow schema` all read this one list, so the
    /// file format, its documentation and its JSON Schema cannot drift apart.
    public static let keys: [ConfigKey] = [
        ConfigKey("$schema", .string(), optional: true, expected: "a string",
                  "The JSON Schema an editor checks the file against: \"ganflow.schema.json\" beside the shipped pipelines."),
        ConfigKey("name", .string(), expected: "a non-empty string", ifEmpty: "the name must not be empty",
                  "The pipeline's name: runs go to runs/<name>, and checkpoints only resume a pipeline of the same name."),
        ConfigKey("description", .string(), optional: true, expected: "a string", "What the pipeline does, for people."),
        ConfigKey("seed", .int(min: 0, max: integerLimit), default: .number(0), expected: "an integer >= 0",
                  "Seeds every random stream of the run (initialisation, noise, shuffling, augmentation)."),
        ConfigKey("steps", .int(min: 1, max: integerLimit), optional: true, expected: "an integer >= 1",
                  "Length of the run in steps (or give 'epochs', or --steps when running it)."),
        ConfigKey("epochs", .int(min: 1, max: integerLimit), optional: true, expected: "an integer >= 1",
                  "Length of the run in passes over the first dataset (or give 'steps')."),
        ConfigKey("precision", .string(choices: ComputePrecision.allCases.map(\.rawValue)), default: .string("fp32"),
                  "What convolutions and matrix products compute in: fp32, or bf16 (bfloat16 sources and weights, fp32 accumulation, weights, optimizer state and checkpoints; needs AVX512_BF16 or AMX, checked before the first step; --precision overrides it)."),
        ConfigKey("output", .path, optional: true, expected: "a directory path string",
                  "The run directory (default runs/<name>; --out overrides it)."),
        ConfigKey("checkpoint", .object([
            ConfigKey("every", .int(min: 1, max: sectionLimit), default: .number(500), expected: "an integer >= 1",
                      "Write a checkpoint every this many steps (and at the end of the run)."),
            ConfigKey("keep", .int(min: 1, max: sectionLimit), default: .number(3), expected: "an integer >= 1",
                      "Keep only the newest this many checkpoints."),
        ]), default: .object([]), expected: "an object", "When to write checkpoints."),
        ConfigKey("log", .object([
            ConfigKey("every", .int(min: 1, max: sectionLimit), default: .number(50), expected: "an integer >= 1",
                      "Print progress every this many steps (metrics.jsonl gets every step)."),
        ]), default: .object([]), expected: "an object", "How often the run reports progress."),
        ConfigKey("distributed", .object([
            ConfigKey("syncBatchNorm", .bool, default: .bool(false), expected: "true or false",
                      "Batch norm uses the statistics of the global batch while training; false keeps each rank's own."),
            ConfigKey("bucketKiB", .int(min: 1, max: 1_048_576), default: .number(4096), expected: "an integer from 1 to 1048576",
                      "Gradients are allreduced in buckets of about this many KiB, each sent as soon as it is known."),
        ]), default: .object([]), expected: "an object like {\"syncBatchNorm\": true}",
            "How ranks under mpirun -np N share the work; a single process ignores it."),
        ConfigKey("stages", .map(ConfigKey("stage", .stage, expected: "a stage object",
                                           "One stage: its \"type\" (see `ganflow stages`) and that type's keys.")),
                  expected: "an object of stages", ifEmpty: "a pipeline needs at least one stage",
                  "The stages by id; wires name their outputs as \"id.port\"."),
        ConfigKey("schedule", .list(phase), expected: "an array of phases", missingHint: "the phases of one step",
                  ifEmpty: "the schedule needs at least one phase",
                  "The phases of one step, in order; the stages they drive pull what they need through their wires."),
    ]

    /// One phase of a step: the stages it drives, and how many times.
    static let phase = ConfigKey("phase", .object([
        ConfigKey("run", .oneOf([.string(), .list(ConfigKey("stage id", .string(), expected: "a stage id", "A stage with an effect."))]),
                  expected: "a stage id or a list of stage ids",
                  "The stages this phase drives (usually optimizers), one id or a list."),
        ConfigKey("repeat", .int(min: 1, max: 999_999), default: .number(1), expected: "an integer >= 1",
                  "How many times the phase runs per step (e.g. 5 critic updates per generator update)."),
        ConfigKey("reuse", .list(ConfigKey("stage id", .string(), expected: "a stage id", "A stage an earlier phase evaluated.")),
                  default: .array([]), expected: "a list of stage ids",
                  "Stages whose values this phase takes from the step's earlier phases, with the stages they read from, instead of evaluating them again: [\"G\"] trains G on the images D was just trained on, as pytorch/examples' DCGAN does, and saves G's forward pass. Refused where an earlier phase changes them after evaluating them."),
    ]), expected: "a phase object like {\"run\": [\"optD\"]}", "One phase of a step.")

    /// Counts of steps and the seed stay below 10^15, where a Double still holds every integer.
    static let integerLimit = 999_999_999_999_999
    /// The checkpoint and log periods stay below 10^12.
    static let sectionLimit = 999_999_999_999

    /// Top-level keys, as `--set key=value` reaches them.
    static var topLevelKeys: [String] { keys.map(\.name) }
}
