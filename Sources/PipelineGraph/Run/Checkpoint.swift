import Foundation
import TensorRuntime

/// Saving and loading the whole state of a run as one safetensors file.
///
/// Tensors are stored as `<stageID>/<name>`, small values as metadata `<stageID>/<key>`. The
/// file also records the pipeline's name, a fingerprint of its tensors' names and shapes (so a
/// checkpoint from another pipeline is refused), the step and the evaluation counter.
public enum Checkpoint {
    public struct Loaded {
        public var step: Int
        public var evaluationIndex: Int
        public var path: String
    }

    static let directoryName = "checkpoints"

    public static func fileName(step: Int) -> String { String(format: "step-%08d.safetensors", step) }

    /// Every checkpoint in `runDirectory`, oldest first.
    public static func list(in runDirectory: String) -> [String] {
        let dir = (runDirectory as NSString).appendingPathComponent(directoryName)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { $0.hasPrefix("step-") && $0.hasSuffix(".safetensors") }.sorted()
            .map { (dir as NSString).appendingPathComponent($0) }
    }

    /// The archive of the pipeline's current state.
    static func archive(of pipeline: Pipeline, step: Int, evaluationIndex: Int) throws -> SafeTensorsArchive {
        var archive = SafeTensorsArchive(metadata: [
            "format": "pt",
            "ganflow.pipeline": pipeline.document.name,
            "ganflow.step": String(step),
            "ganflow.evaluation": String(evaluationIndex),
        ])
        var shapes: [String] = []
        for id in pipeline.order {
            let state = try pipeline.nodes[id]!.stage.checkpointState()
            for (name, t) in state.tensors.sorted(by: { $0.key < $1.key }) {
                archive.set("\(id)/\(name)", t)
                shapes.append("\(id)/\(name)\(describe(t.shape))")
            }
            for (k, v) in state.values { archive.metadata["\(id)/\(k)"] = v }
        }
        archive.metadata["ganflow.fingerprint"] = fingerprint(shapes)
        return archive
    }

    static func fingerprint(_ shapes: [String]) -> String {
        String(stableHash(shapes.sorted().joined(separator: ";")), radix: 16)
    }

    /// Writes a checkpoint atomically and removes all but the newest `keep`.
    @discardableResult
    public static func save(_ pipeline: Pipeline, step: Int, evaluationIndex: Int, runDirectory: String, keep: Int) throws -> String {
        let dir = (runDirectory as NSString).appendingPathComponent(directoryName)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = (dir as NSString).appendingPathComponent(fileName(step: step))
        try archive(of: pipeline, step: step, evaluationIndex: evaluationIndex).write(to: path)
        let all = list(in: runDirectory)
        for old in all.dropLast(keep) { try? FileManager.default.removeItem(atPath: old) }
        return path
    }

    /// The state a checkpoint holds for stage `id` (empty when it has none), e.g. to export one
    /// model without building the whole pipeline.
    public static func stageState(_ id: String, in archive: SafeTensorsArchive) -> StageState {
        var state = StageState()
        let prefix = id + "/"
        for name in archive.names where name.hasPrefix(prefix) {
            // Names come from `archive.names`, so the lookup cannot fail.
            state.tensors[String(name.dropFirst(prefix.count))] = try? archive.tensor(name)
        }
        for (k, v) in archive.metadata where k.hasPrefix(prefix) {
            state.values[String(k.dropFirst(prefix.count))] = v
        }
        return state
    }

    /// Restores the pipeline from `path`; refuses a checkpoint of another pipeline.
    public static func load(_ pipeline: Pipeline, from path: String) throws -> Loaded {
        let archive = try SafeTensorsArchive(contentsOf: path)
        func refuse(_ why: String) -> PipelineError {
            PipelineError("checkpoint.mismatch", file: path, why)
        }
        guard archive.metadata["ganflow.pipeline"] == pipeline.document.name else {
            throw PipelineErrors([refuse("checkpoint of pipeline '\(archive.metadata["ganflow.pipeline"] ?? "?")', not '\(pipeline.document.name)'")])
        }
        guard let step = archive.metadata["ganflow.step"].flatMap(Int.init),
              let index = archive.metadata["ganflow.evaluation"].flatMap(Int.init) else {
            throw PipelineErrors([refuse("not a GANFlow checkpoint (no step recorded)")])
        }
        let expected = try Checkpoint.archive(of: pipeline, step: 0, evaluationIndex: 0)
        if expected.metadata["ganflow.fingerprint"] != archive.metadata["ganflow.fingerprint"] {
            let missing = expected.names.filter { archive.entry($0) == nil }
            let detail = missing.first.map { "; it has no tensor '\($0)'" } ?? ""
            throw PipelineErrors([refuse("the checkpoint's tensors do not match this pipeline's stages\(detail)")])
        }
        for id in pipeline.order {
            let state = stageState(id, in: archive)
            do {
                try pipeline.nodes[id]!.stage.restore(state)
            } catch let p as StageProblem {
                throw PipelineErrors([refuse("stage '\(id)': \(p.message)")])
            }
        }
        return Loaded(step: step, evaluationIndex: index, path: path)
    }
}
