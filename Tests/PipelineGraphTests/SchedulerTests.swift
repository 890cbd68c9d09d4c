import Foundation
import GANFlowTestSupport
import Testing
@testable import PipelineGraph
import TensorRuntime

@Suite struct SchedulerTests {
    /// Two models trained on one source through a diamond: x -> A, x -> B, loss(A, B) ... each
    /// with its own optimizer, both driven in one phase, plus a second phase repeated twice.
    static let diamond = """
    { "name": "diamond", "seed": 5, "steps": 6,
      "stages": {
        "x":    { "type": "test.source", "size": 8 },
        "y":    { "type": "test.source", "size": 8 },
        "A":    { "type": "test.scale", "input": "x.value" },
        "B":    { "type": "test.scale", "input": "y.value" },
        "AB":   { "type": "test.distance", "a": "A.out", "b": "B.out" },
        "optA": { "type": "test.sgd", "minimize": "AB.loss", "parameters": "A", "lr": 0.05 },
        "optB": { "type": "test.sgd", "minimize": "AB.loss", "parameters": "B", "lr": 0.02 },
        "log":  { "type": "test.sink", "input": "A.out", "every": 2 }
      },
      "schedule": [ { "run": ["optA", "optB"] }, { "run": "optB", "repeat": 2 } ] }
    """

    func build(_ text: String) throws -> Pipeline {
        let doc = try PipelineDocument.parse(text, file: "diamond.json")
        return try PipelineBuilder(registry: toyRegistry).build(doc, outputDirectory: NSTemporaryDirectory())
    }

    func train(_ kind: SchedulerKind) throws -> [Float] {
        let p = try build(Self.diamond)
        let dir = TestDirectories.make("sched")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = Runner.Options(runDirectory: dir)
        options.scheduler = kind
        options.quiet = true
        _ = try ProfilerLock.exclusive { try Runner(pipeline: p, options: options).run() }
        return p.nodes["A"]!.stage.parameters[0].1.scalars + p.nodes["B"]!.stage.parameters[0].1.scalars
    }

    @Test func serialAndDispatchAreBitIdentical() throws {
        let serial = try train(.serial)
        let concurrent = try train(.dispatch)
        #expect(serial == concurrent)
        #expect(serial != [Float](repeating: 1, count: 16), "training must have changed the weights")
    }

    @Test func aPhaseEvaluatesOnlyWhatItsTargetsNeed() throws {
        let p = try build(Self.diamond)
        let e = Evaluator(pipeline: p, kind: .serial)
        let plan = e.plan(["log": ["written"]])
        #expect(Set(plan.keys) == ["log", "A", "x"])
        _ = try e.evaluate(["log": ["written"]], step: 1, index: 0, mode: .sample)
        #expect((p.nodes["y"]!.stage as! ToySource).evaluations.withLock { $0 } == 0)
        #expect((p.nodes["x"]!.stage as! ToySource).evaluations.withLock { $0 } == 1)
    }

    @Test func sinksRunOnTheirStepsAndAtTheEnd() throws {
        let p = try build(Self.diamond.replacingOccurrences(of: "\"steps\": 6", with: "\"steps\": 7"))
        let dir = TestDirectories.make("sink")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        _ = try ProfilerLock.exclusive { try Runner(pipeline: p, options: options).run() }
        #expect((p.nodes["log"]!.stage as! ToySink).steps.withLock { $0 } == [2, 4, 6, 7])
    }

    @Test func freshSourceValuesForEachEvaluation() throws {
        let p = try build(Self.diamond)
        let e = Evaluator(pipeline: p, kind: .serial)
        let a = try e.evaluate(["x": ["value"]], step: 1, index: 0, mode: .train)[Wire(stage: "x", port: "value")]!.tensor!
        let b = try e.evaluate(["x": ["value"]], step: 1, index: 1, mode: .train)[Wire(stage: "x", port: "value")]!.tensor!
        let a2 = try e.evaluate(["x": ["value"]], step: 9, index: 0, mode: .train)[Wire(stage: "x", port: "value")]!.tensor!
        #expect(a.scalars != b.scalars)
        #expect(a.scalars == a2.scalars, "values depend on the evaluation index, not on timing")
    }
}

@Suite struct GradModeTests {
    @Test func sampleEvaluationsRecordNoGraphOnAnyThread() throws {
        let doc = try PipelineDocument.parse(SchedulerTests.diamond, file: "diamond.json")
        let p = try PipelineBuilder(registry: toyRegistry).build(doc, outputDirectory: NSTemporaryDirectory())
        for kind in SchedulerKind.allCases {
            let e = Evaluator(pipeline: p, kind: kind)
            let sample = try e.evaluate(["A": ["out"]], step: 1, index: 0, mode: .sample)[Wire(stage: "A", port: "out")]!.tensor!
            let train = try e.evaluate(["A": ["out"]], step: 1, index: 0, mode: .train)[Wire(stage: "A", port: "out")]!.tensor!
            #expect(sample.gradFn == nil, "\(kind)")
            #expect(train.gradFn != nil, "\(kind)")
        }
    }
}

@Suite struct GatingTests {
    @Test func aDrivenStageWaitsForItsFromStep() throws {
        let text = SchedulerTests.diamond.replacingOccurrences(of: "\"lr\": 0.02 }", with: "\"lr\": 0.02, \"from\": 100 }")
        let doc = try PipelineDocument.parse(text, file: "diamond.json")
        let p = try PipelineBuilder(registry: toyRegistry).build(doc, outputDirectory: NSTemporaryDirectory())
        let dir = TestDirectories.make("gate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var o = Runner.Options(runDirectory: dir)
        o.quiet = true
        _ = try ProfilerLock.exclusive { try Runner(pipeline: p, options: o).run() }
        #expect(p.nodes["B"]!.stage.parameters[0].1.scalars == [Float](repeating: 1, count: 8), "optB never ran")
        #expect(p.nodes["A"]!.stage.parameters[0].1.scalars != [Float](repeating: 1, count: 8), "optA ran")
    }
}
