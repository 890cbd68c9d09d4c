import Foundation
import Synchronization
import Testing
@testable import PipelineGraph
import TensorRuntime

/// A committing stage that, in `commit`, doubles its target's parameters and asks the evaluator
/// to recompute its loss, as a line search does.
final class ToyProbe: CommittingStage, @unchecked Sendable {
    static let typeName = "test.probe"
    static let summary = "Recomputes its loss after changing a model."
    static let configKeys = [ConfigKey("minimize", .wire, "Loss."), ConfigKey("parameters", .stageRef, "Model.")]
    let outputs: [String: PortType] = ["update": .effect]
    let target: String
    let params: [Tensor]
    var recompute: (@Sendable (Set<String>) throws -> [String: PortValue])?
    var seen: [Float] = []
    var unchanged: [Float] = []
    init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        target = config.string("parameters")
        params = context.stage(target)!.parameters.map(\.1)
    }
    func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        seen.append(try e.tensor("minimize").item())
        recompute = e.recompute
        return ["update": .effect]
    }
    func commit() throws {
        unchanged.append(try recompute!([])["minimize"]!.tensor!.item())
        for p in params { try p.assign(p * 2) }
        seen.append(try recompute!([target])["minimize"]!.tensor!.item())
    }
}

@Suite struct RecomputeTests {
    static let pipeline = """
    { "name": "probe", "seed": 3, "steps": 1,
      "stages": {
        "x":  { "type": "test.source", "size": 5 },
        "y":  { "type": "test.source", "size": 5 },
        "A":  { "type": "test.scale", "input": "x.value" },
        "B":  { "type": "test.scale", "input": "y.value" },
        "AB": { "type": "test.distance", "a": "A.out", "b": "B.out" },
        "probe": { "type": "test.probe", "minimize": "AB.loss", "parameters": "A" }
      },
      "schedule": [ { "run": "probe" } ] }
    """

    @Test(arguments: [SchedulerKind.serial, .dispatch])
    func recomputesOnlyWhatDependsOnTheChangedStage(kind: SchedulerKind) throws {
        let registry = StageRegistry([ToySource.self, ToyScale.self, ToyDistance.self, ToyProbe.self])
        let p = try PipelineBuilder(registry: registry).build(try PipelineDocument.parse(Self.pipeline, file: "probe.json"),
                                                               outputDirectory: NSTemporaryDirectory())
        let values = try Evaluator(pipeline: p, kind: kind).evaluate(["probe": ["update"]], step: 1, index: 4, mode: .train)
        let x = values[Wire(stage: "x", port: "value")]!.tensor!.scalars
        let y = values[Wire(stage: "y", port: "value")]!.tensor!.scalars
        let probe = p.nodes["probe"]!.stage as! ToyProbe
        // Each source ran once: the recomputations reused x and y.
        #expect((p.nodes["x"]!.stage as! ToySource).evaluations.withLock { $0 } == 1)
        #expect((p.nodes["y"]!.stage as! ToySource).evaluations.withLock { $0 } == 1)
        // A's weight went from 1 to 2: the loss is now sum((2x - y)^2) over the same x and y.
        let before = zip(x, y).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        let after = zip(x, y).reduce(Float(0)) { $0 + (2 * $1.0 - $1.1) * (2 * $1.0 - $1.1) }
        #expect(abs(probe.seen[0] - before) <= 1e-5 * before)
        #expect(abs(probe.seen[1] - after) <= 1e-5 * after)
        // Nothing changed: the evaluation's own value comes back.
        #expect(probe.unchanged == [probe.seen[0]])
    }

    @Test func aStageEvaluatedOnItsOwnHasNoRecompute() throws {
        let e = Evaluation(outputs: ["loss"], inputs: [:], step: 1, index: 0, mode: .train, seed: 0, stageID: "s")
        #expect(e.recompute == nil)
    }
}
