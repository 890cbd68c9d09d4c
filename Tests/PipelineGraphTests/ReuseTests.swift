import Foundation
import GANFlowTestSupport
import Testing
@testable import PipelineGraph
import TensorRuntime

/// A schedule phase's `reuse`: values of the step's earlier phases read again instead of being
/// evaluated again, as a GAN's generator phase reads the images its discriminator phase made.
@Suite struct ReuseTests {
    /// B is trained first on A's output; then A is trained on the same A.out (from the same x),
    /// against a B that has changed.
    static func pipeline(_ schedule: String) -> String {
        """
        { "name": "reuse", "seed": 3, "steps": 4,
          "stages": {
            "x":    { "type": "test.source", "size": 8 },
            "y":    { "type": "test.source", "size": 8 },
            "A":    { "type": "test.scale", "input": "x.value" },
            "B":    { "type": "test.scale", "input": "y.value" },
            "AB":   { "type": "test.distance", "a": "A.out", "b": "B.out" },
            "optA": { "type": "test.sgd", "minimize": "AB.loss", "parameters": "A", "lr": 0.05 },
            "optB": { "type": "test.sgd", "minimize": "AB.loss", "parameters": "B", "lr": 0.02 },
            "w":    { "type": "test.source", "size": 2 }
          },
          "schedule": \(schedule) }
        """
    }
    static let reusing = #"[ { "run": "optB" }, { "run": "optA", "reuse": ["A"] } ]"#

    func build(_ text: String) throws -> Pipeline {
        try PipelineBuilder(registry: toyRegistry).build(try PipelineDocument.parse(text, file: "p.json"), outputDirectory: NSTemporaryDirectory())
    }

    func problems(_ schedule: String) -> [String] {
        do {
            _ = try build(Self.pipeline(schedule))
            return []
        } catch let e as PipelineErrors {
            return e.errors.map(\.description)
        } catch {
            return ["unexpected: \(error)"]
        }
    }

    func evaluations(_ p: Pipeline, _ id: String) -> Int { (p.nodes[id]!.stage as! ToySource).evaluations.withLock { $0 } }

    @Test func theLaterPhaseReadsTheEarlierValuesAndEvaluatesTheRest() throws {
        let p = try build(Self.pipeline(Self.reusing))
        let e = Evaluator(pipeline: p, kind: .serial)
        let first = try e.evaluate(p.targets(of: p.document.schedule[0]), step: 0, index: 0, mode: .train)
        try (p.nodes["optB"]!.stage as! ToySGD).commit()
        let given = first.filter { ["A", "x"].contains($0.key.stage) }
        #expect(given.count == 2)
        let second = try e.evaluate(p.targets(of: p.document.schedule[1]), step: 0, index: 1, mode: .train, given: given)
        #expect(evaluations(p, "x") == 1, "x is not drawn again")
        #expect(evaluations(p, "y") == 2, "B's side is evaluated again")
        #expect(second[Wire(stage: "A", port: "out")] == nil && second[Wire(stage: "x", port: "value")] == nil,
                "only the values computed here are returned")
        // The loss is that of the first phase's A.out against the changed B.
        let a = first[Wire(stage: "A", port: "out")]!.tensor!, b = second[Wire(stage: "B", port: "out")]!.tensor!
        let expected = zip(a.scalars, b.scalars).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        let loss = second[Wire(stage: "AB", port: "loss")]!.tensor!.scalars[0]
        #expect(abs(loss - expected) <= 1e-5 * expected)
        #expect(b.scalars != first[Wire(stage: "B", port: "out")]!.tensor!.scalars)
    }

    func train(_ schedule: String, _ kind: SchedulerKind) throws -> (weights: [Float], x: Int, y: Int) {
        let p = try build(Self.pipeline(schedule))
        let dir = TestDirectories.make("reuse")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = Runner.Options(runDirectory: dir)
        options.scheduler = kind
        options.quiet = true
        _ = try ProfilerLock.exclusive { try Runner(pipeline: p, options: options).run() }
        let weights = p.nodes["A"]!.stage.parameters[0].1.scalars + p.nodes["B"]!.stage.parameters[0].1.scalars
        return (weights, evaluations(p, "x"), evaluations(p, "y"))
    }

    @Test func aRunDrawsTheReusedSourceOncePerStepOnEitherScheduler() throws {
        let serial = try train(Self.reusing, .serial)
        let concurrent = try train(Self.reusing, .dispatch)
        #expect(serial.weights == concurrent.weights)
        #expect(serial.x == 4 && serial.y == 8, "x once per step, y in both phases")
        let fresh = try train(#"[ { "run": "optB" }, { "run": "optA" } ]"#, .serial)
        #expect(fresh.x == 8)
        #expect(fresh.weights != serial.weights, "without reuse, A trains on a fresh x")
        #expect(serial.weights.allSatisfy(\.isFinite) && serial.weights != [Float](repeating: 1, count: 16))
    }

    @Test func refusesWhatCannotBeReused() {
        #expect(problems(#"[ { "run": "optB" }, { "run": "optA", "reuse": ["yy"] } ]"#) == [
            "p.json:12:63: $.schedule[1].reuse[0]: no stage 'yy' (did you mean 'y'?)",
        ])
        #expect(problems(#"[ { "run": "optB", "reuse": ["A"] }, { "run": "optA" } ]"#) == [
            "p.json:12:44: $.schedule[0].reuse[0]: no earlier phase of the step evaluates 'A' (out), so there is nothing to reuse",
        ])
        #expect(problems(#"[ { "run": "optA" }, { "run": "optA", "reuse": ["A"] } ]"#) == [
            "p.json:12:63: $.schedule[1].reuse[0]: 'A' cannot be reused: 'optA' (test.sgd) changes 'A' in $.schedule[0], after $.schedule[0] evaluated 'A'",
        ])
        #expect(problems(#"[ { "run": "optB" }, { "run": "optA", "reuse": ["A"], "repeat": 2 } ]"#) == [
            "p.json:12:63: $.schedule[1].reuse[0]: 'A' cannot be reused: 'optA' (test.sgd) changes 'A' when this phase repeats, after $.schedule[0] evaluated 'A'",
        ])
        #expect(problems(#"[ { "run": "optB" }, { "run": "optA", "reuse": ["optB"] } ]"#) == [
            "p.json:12:63: $.schedule[1].reuse[0]: stage 'optB' (test.sgd) acts; a phase reuses the values of stages that compute",
        ])
        #expect(problems(#"[ { "run": "optB" }, { "run": "optB", "reuse": ["B"] } ]"#) == [
            "p.json:12:63: $.schedule[1].reuse[0]: 'B' cannot be reused: 'optB' (test.sgd) changes 'B' in $.schedule[0], after $.schedule[0] evaluated 'B'",
        ])
        // A later phase reads A after optA changed it in between: the newest evaluation counts.
        #expect(problems(#"[ { "run": "optA" }, { "run": "optB" }, { "run": "optB", "reuse": ["A"] } ]"#) == [])
        #expect(problems(#"[ { "run": "optB" }, { "run": "optA", "reuse": ["w"] } ]"#) == [
            "p.json:12:63: $.schedule[1].reuse[0]: this phase does not read 'w': it drives 'optA', which need no value of it",
        ])
        #expect(problems(#"[ { "run": "optB" }, { "run": "optA", "repeat": 3 }, { "run": "optB", "reuse": ["A"] } ]"#).count == 1)
        #expect(problems(#"[ { "run": "optB", "repeat": 3 }, { "run": "optA", "reuse": ["A", "x"] } ]"#) == [])
    }
}
