import Foundation
import GANFlowTestSupport
import PipelineGraph
import PipelineStages
import TensorRuntime

/// Random images in [-1, 1], fresh for every evaluation: a dataset stand-in for stage tests.
final class TestImages: Stage, @unchecked Sendable {
    static let typeName = "test.images"
    static let summary = "Random images."
    static let configKeys = [
        ConfigKey("batch", .int(min: 1), default: .number(4), "Images per batch."),
        ConfigKey("channels", .int(min: 1), default: .number(1), "Channels."),
        ConfigKey("size", .int(min: 1), default: .number(32), "Height and width."),
    ]
    let shape: [Int]
    let outputs: [String: PortType]
    init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        shape = [config.int("batch"), config.int("channels"), config.int("size"), config.int("size")]
        outputs = ["images": .tensor(shape)]
    }
    func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        var rng = e.random()
        return ["images": .tensor(Tensor(randomUniform: shape, low: -1, high: 1, using: &rng))]
    }
}

/// Does nothing, but acts: a schedule target for pipelines that only check building.
final class TestIdle: Stage, @unchecked Sendable {
    static let typeName = "test.idle"
    static let summary = "Nothing."
    static let configKeys: [ConfigKey] = []
    let outputs: [String: PortType] = ["done": .effect]
    init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {}
    func evaluate(_ e: Evaluation) throws -> [String: PortValue] { ["done": .effect] }
}

/// The standard registry plus the test stages.
let ganTestRegistry: StageRegistry = {
    var r = StageRegistry.standard
    r.register(TestImages.self)
    r.register(TestIdle.self)
    return r
}()

/// Builds a pipeline from JSON text with the test registry.
func buildGANPipeline(_ text: String, file: String = "test.json") throws -> Pipeline {
    let doc = try PipelineDocument.parse(text, file: file)
    return try PipelineBuilder(registry: ganTestRegistry).build(doc, outputDirectory: NSTemporaryDirectory())
}

/// A pipeline of the given stages (JSON object members) driven by `schedule`.
func pipeline(stages: String, schedule: String = #"[{ "run": "optD" }, { "run": "optG" }]"#, steps: Int = 3, seed: Int = 1) throws -> Pipeline {
    try buildGANPipeline(#"{ "name": "t", "seed": \#(seed), "steps": \#(steps), "stages": { \#(stages) }, "schedule": \#(schedule) }"#)
}

/// The problems a pipeline of these stages reports, each as "path: message (suggestion)".
func problems(stages: String) -> [String] {
    do {
        _ = try pipeline(stages: stages + #", "idle": { "type": "test.idle" }"#, schedule: #"[{ "run": "idle" }]"#)
        return []
    } catch let e as PipelineErrors {
        return e.errors.map { "\($0.path): \($0.message)" + ($0.suggestion.map { " (\($0))" } ?? "") }
    } catch {
        return ["\(error)"]
    }
}

/// A fresh temporary directory, removed with the test process's scratch folder at exit.
func temporaryDirectory(_ label: String) -> String { TestDirectories.make(label) }

func stage<T>(_ p: Pipeline, _ id: String, as: T.Type = T.self) -> T { p.nodes[id]!.stage as! T }

/// Names and shapes of a stage's parameters.
func shapes(_ params: [(String, Tensor)]) -> [String: [Int]] {
    Dictionary(uniqueKeysWithValues: params.map { ($0.0, $0.1.shape) })
}

func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    largestDifference(a, b)
}
