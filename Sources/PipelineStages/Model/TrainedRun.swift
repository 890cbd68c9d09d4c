import Foundation
import PipelineGraph
import TensorRuntime

/// A run directory (or one of its checkpoints) opened to reuse a trained model: export its
/// weights, or draw samples from its generator.
public struct TrainedRun {
    /// The checkpoint read: the one given, or the newest in the run directory.
    public let checkpointPath: String
    /// The pipeline the run wrote into its directory.
    public let pipelineFile: String
    public let checkpoint: SafeTensorsArchive
    /// `pipelineFile` parsed, read once when the run is opened; nil when there is none.
    let pipeline: PipelineDocument?

    /// Opens `path`: a run directory (its newest checkpoint) or a checkpoint file inside one.
    public init(_ path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw PipelineErrors([PipelineError("run.missing", file: path, "no such run directory or checkpoint")])
        }
        let runDirectory: String
        if isDirectory.boolValue {
            runDirectory = path
            guard let newest = Checkpoint.list(in: path).last else {
                throw PipelineErrors([PipelineError("run.checkpoint", file: path, "no checkpoint in this run directory (checkpoints/step-*.safetensors)")])
            }
            checkpointPath = newest
        } else {
            checkpointPath = path
            runDirectory = ((path as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
        }
        pipelineFile = ((runDirectory.isEmpty ? "." : runDirectory) as NSString).appendingPathComponent("pipeline.json")
        checkpoint = try SafeTensorsArchive(contentsOf: checkpointPath)
        guard checkpoint.metadata["ganflow.step"] != nil else {
            throw PipelineErrors([PipelineError("checkpoint.mismatch", file: checkpointPath, "not a GANFlow checkpoint (no step recorded)")])
        }
        pipeline = FileManager.default.fileExists(atPath: pipelineFile) ? try PipelineDocument.load(file: pipelineFile) : nil
    }

    /// The run's pipeline, which building a stage of it needs; a missing one says where it was
    /// looked for.
    func document() throws -> PipelineDocument {
        guard let pipeline else {
            throw PipelineErrors([PipelineError("run.pipeline", file: checkpointPath,
                                                "no pipeline.json beside this run (looked for \(pipelineFile)); a checkpoint is read in its run directory, as RUN/checkpoints/step-N.safetensors")])
        }
        return pipeline
    }

    /// The step the checkpoint was written at.
    public var step: Int { checkpoint.metadata["ganflow.step"].flatMap(Int.init) ?? 0 }

    /// The `state_dict` of model stage `id` (its moving average with `ema`), straight from the
    /// checkpoint. When the run's pipeline is beside it, the stage must be a model there.
    public func stateDict(stage id: String, ema: Bool, registry: StageRegistry = .standard) throws -> SafeTensorsArchive {
        if let doc = pipeline {
            guard let raw = doc.stages[id] else {
                throw PipelineErrors([PipelineError("ref.stage", file: pipelineFile, "no stage '\(id)'",
                                                    suggestion: didYouMean(id, among: doc.stageOrder))])
            }
            guard case .string(let typeName)? = raw["type"], registry[typeName] is any ModelStage.Type else {
                throw PipelineErrors([PipelineError("export.stage", file: pipelineFile, "stage '\(id)' is not a model (generator or discriminator)")])
            }
        }
        do {
            return try ModelStateDict.fromCheckpoint(checkpoint, stage: id, ema: ema)
        } catch let p as StageProblem {
            throw PipelineErrors([PipelineError("export.stage", file: checkpointPath, "stage '\(id)': \(p.message)")])
        }
    }

    /// Builds the generator `id` (or the pipeline's only generator) with the stages it reads from,
    /// and loads its checkpointed state, including any moving average.
    public func generator(_ id: String?, registry: StageRegistry = .standard) throws -> (id: String, stage: any GeneratorStage) {
        let doc = try document()
        let generators = doc.stageOrder.filter { id in
            if case .string(let type)? = doc.stages[id]?["type"] { return type.hasPrefix("generator.") }
            return false
        }
        let chosen: String
        if let id {
            guard doc.stages[id] != nil else {
                throw PipelineErrors([PipelineError("ref.stage", file: pipelineFile, "no stage '\(id)'",
                                                    suggestion: didYouMean(id, among: doc.stageOrder))])
            }
            chosen = id
        } else {
            guard generators.count == 1 else {
                throw PipelineErrors([PipelineError("sample.stage", file: pipelineFile,
                                                    generators.isEmpty ? "the pipeline has no generator stage" : "several generators (\(generators.joined(separator: ", "))); choose one with --stage")])
            }
            chosen = generators[0]
        }
        let g: any GeneratorStage = try build(chosen, of: doc, registry: registry, as: "a generator").stage
        return (chosen, g)
    }

    /// How the run's training images reached the generator's size: the `fit` of its dataset
    /// stages that serve square images of side `side` (their `size`), with the first such stage,
    /// when they all agree; nil when there is no pipeline, no such stage, or they differ.
    public func datasetFit(side: Int, registry: StageRegistry = .standard) -> (stage: String, fit: String)? {
        guard let doc = pipeline else { return nil }
        var found: [(stage: String, fit: String)] = []
        for id in doc.stageOrder {
            guard let raw = doc.stages[id], case .string(let typeName)? = raw["type"], typeName.hasPrefix("dataset."),
                  case .number(let size)? = raw["size"], size == Double(side),
                  let key = registry[typeName]?.configKeys.first(where: { $0.name == "fit" }),
                  case .string(let fit)? = raw["fit"] ?? key.defaultValue else { continue }
            found.append((id, fit))
        }
        guard let first = found.first, found.allSatisfy({ $0.fit == first.fit }) else { return nil }
        return first
    }

    /// Whether stage `id` of the run's pipeline is a discriminator that scores single images.
    public func isCritic(_ id: String, registry: StageRegistry = .standard) throws -> Bool {
        let doc = try document()
        guard case .string(let typeName)? = doc.stages[id]?["type"] else { return false }
        return registry[typeName] is any CriticStage.Type
    }

    /// Builds the discriminator `id` (any stage that scores images) with the stages it reads
    /// from, loads its checkpointed state, and gives the shape [N, C, H, W] of the images it was
    /// built for.
    public func critic(_ id: String, registry: StageRegistry = .standard) throws -> (stage: any CriticStage, imageShape: [Int]) {
        let doc = try document()
        guard doc.stages[id] != nil else {
            throw PipelineErrors([PipelineError("ref.stage", file: pipelineFile, "no stage '\(id)'",
                                                suggestion: didYouMean(id, among: doc.stageOrder))])
        }
        let (critic, pipeline): (any CriticStage, Pipeline) = try build(id, of: doc, registry: registry, as: "a discriminator of single images")
        let node = pipeline.nodes[id]!
        let shape = node.inputs.sorted { $0.key < $1.key }.lazy
            .compactMap { pipeline.nodes[$0.value.stage]?.stage.outputs[$0.value.port]?.shape }
            .first { $0.count == 4 }
        guard let shape else {
            throw PipelineErrors([PipelineError("export.stage", file: pipelineFile, "stage '\(id)' reads no images [N, C, H, W]")])
        }
        return (critic, shape)
    }

    /// Stage `chosen` of `doc`, built with the stages it reads from as a `T` (`what` names `T` in
    /// the error), with its checkpointed state loaded; and the pruned pipeline it was built in.
    private func build<T>(_ chosen: String, of doc: PipelineDocument, registry: StageRegistry, as what: String) throws -> (stage: T, pipeline: Pipeline) {
        var pruned = doc
        let keep = Self.upstream(of: chosen, in: doc, registry: registry)
        pruned.stageOrder = doc.stageOrder.filter(keep.contains)
        pruned.stages = doc.stages.filter { keep.contains($0.key) }
        pruned.schedule = []
        let pipeline = try PipelineBuilder(registry: registry).build(pruned, outputDirectory: FileManager.default.temporaryDirectory.path)
        guard let stage = pipeline.nodes[chosen]?.stage, let typed = stage as? T else {
            throw PipelineErrors([PipelineError("sample.stage", file: pipelineFile, "stage '\(chosen)' is not \(what)")])
        }
        do {
            try stage.restore(Checkpoint.stageState(chosen, in: checkpoint))
        } catch let p as StageProblem {
            throw PipelineErrors([PipelineError("checkpoint.mismatch", file: checkpointPath, "stage '\(chosen)': \(p.message)")])
        }
        return (typed, pipeline)
    }

    /// `id` and every stage it reads from or refers to, transitively.
    static func upstream(of id: String, in doc: PipelineDocument, registry: StageRegistry) -> Set<String> {
        var seen: Set<String> = []
        var stack = [id]
        while let s = stack.popLast() {
            guard seen.insert(s).inserted, let raw = doc.stages[s],
                  case .string(let typeName)? = raw["type"], let type = registry[typeName] else { continue }
            for key in type.configKeys {
                switch (key.type, raw[key.name]) {
                case (.wire, .string(let w)?): if let wire = Wire(parsing: w) { stack.append(wire.stage) }
                case (.wireMap, .object(let entries)?):
                    for (_, v) in entries { if case .string(let w) = v, let wire = Wire(parsing: w) { stack.append(wire.stage) } }
                case (.stageRef, .string(let r)?): stack.append(r)
                default: break
                }
            }
        }
        return seen
    }
}
