import Foundation
import GANFlowTestSupport
import ImageIO
import PipelineGraph
@testable import PipelineStages
import TensorRuntime

/// The repository's root, so fixtures are found wherever the tests run from.
let repositoryRoot: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().path

func fixture(_ relative: String) -> String { repositoryRoot + "/Fixtures/" + relative }

/// Takes any value so a pipeline of data stages alone has something to schedule.
final class ConsumeStage: Stage, @unchecked Sendable {
    static let typeName = "test.consume"
    static let summary = "Reads its input."
    static let configKeys = [ConfigKey("input", .wire, "Anything.")]
    let outputs: [String: PortType] = ["done": .effect]
    init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {}
    func evaluate(_ e: Evaluation) throws -> [String: PortValue] { ["done": .effect] }
}

/// Serves a fixed integer, as a progressive schedule would serve a resolution.
final class IntegerStage: Stage, @unchecked Sendable {
    static let typeName = "test.integer"
    static let summary = "A constant integer."
    static let configKeys = [ConfigKey("value", .int(), "The integer.")]
    let value: Int
    let outputs: [String: PortType] = ["value": .integer]
    init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws { value = config.int("value") }
    func evaluate(_ e: Evaluation) throws -> [String: PortValue] { ["value": .integer(value)] }
}

let testRegistry: StageRegistry = {
    var r = StageRegistry.standard
    r.register(ConsumeStage.self)
    r.register(IntegerStage.self)
    r.register(ConstantStage.self)
    return r
}()


/// Builds a pipeline of `stages` (JSON members), with a consumer of `consume` driven by the schedule.
/// The pipeline file is taken to sit at the repository root, so `Fixtures/...` paths resolve.
func buildPipeline(_ stages: String, consume: String = "data.images", seed: Int = 7, output: String? = nil) throws -> Pipeline {
    let text = """
    { "name": "t", "seed": \(seed), "steps": 1,
      "stages": { \(stages), "use": { "type": "test.consume", "input": "\(consume)" } },
      "schedule": [ { "run": "use" } ] }
    """
    let doc = try PipelineDocument.parse(text, file: repositoryRoot + "/test.json")
    return try PipelineBuilder(registry: testRegistry).build(doc, outputDirectory: output ?? temporaryDirectory("out"))
}

/// The problems building `stages` reports, each as `path: message`.
func buildProblems(_ stages: String, consume: String = "data.images") -> [String] {
    do {
        _ = try buildPipeline(stages, consume: consume)
        return []
    } catch let e as PipelineErrors {
        return e.errors.map { "\($0.path): \($0.message)" + ($0.suggestion.map { " (\($0))" } ?? "") }
    } catch {
        return ["unexpected: \(error)"]
    }
}

extension Stage {
    /// Evaluates this stage alone as evaluation `index` of a run, on `communicator`'s rank.
    func run(_ outputs: Set<String>, index: Int = 0, mode: EvaluationMode = .train, inputs: [String: PortValue] = [:],
             step: Int = 1, progress: Double = 0, stageID: String = "data", seed: UInt64 = 7,
             communicator: any Communicator = SingleProcessCommunicator()) throws -> [String: PortValue] {
        var e = Evaluation(outputs: outputs, inputs: inputs, step: step, index: index, mode: mode, seed: seed, stageID: stageID)
        e.progress = progress
        e.communicator = communicator
        return try evaluate(e)
    }

    /// The next training batch's images and labels.
    func nextBatch(mode: EvaluationMode = .train) throws -> (images: [Float], labels: [Float]?) {
        let out = try run(Set(outputs.keys.filter { $0 != "pyramid" }), mode: mode)
        return (out["images"]!.tensor!.scalars, out["labels"]?.tensor?.scalars)
    }
}

extension Pipeline {
    func stage(_ id: String = "data") -> any Stage { nodes[id]!.stage }
}

/// Width, height, channels and bit depth from a PNG's header.
func pngHeader(_ path: String) throws -> [Int] {
    let i = try PNG.info(path)
    return [i.width, i.height, i.channels, i.bitDepth]
}
