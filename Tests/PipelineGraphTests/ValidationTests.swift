import Foundation
import Testing
@testable import PipelineGraph

@Suite struct ValidationTests {
    func problems(_ text: String) -> [String] {
        do {
            let doc = try PipelineDocument.parse(text, file: "p.json")
            _ = try PipelineBuilder(registry: toyRegistry).build(doc, outputDirectory: NSTemporaryDirectory())
            return []
        } catch let e as PipelineErrors {
            return e.errors.map(\.description)
        } catch {
            return ["unexpected: \(error)"]
        }
    }

    @Test func reportsEveryConfigurationProblemAtOnce() {
        let text = """
        {"name": "p", "steps": 1, "stages": {
          "x": {"type": "test.sorce"},
          "y": {"type": "test.source", "size": 0, "colour": 1},
          "A": {"type": "test.scale"},
          "o": {"type": "test.sgd", "minimize": "A.out", "parameters": "A", "lr": "fast"}
        }, "schedule": [{"run": ["o"]}]}
        """
        #expect(problems(text) == [
            "p.json:2:17: $.stages.x.type: unknown stage type 'test.sorce' (did you mean 'test.source'?)",
            "p.json:3:53: $.stages.y.colour: unknown key 'colour' for test.source",
            "p.json:3:40: $.stages.y.size: must be >= 1, found 0",
            "p.json:4:8: $.stages.A: missing key 'input' (Input vector.)",
            "p.json:5:75: $.stages.o.lr: expected a number, found \"fast\"",
        ])
    }

    @Test func reportsBadWiresAndReferences() {
        let text = """
        {"name": "p", "steps": 1, "stages": {
          "x": {"type": "test.source"},
          "A": {"type": "test.scale", "input": "xx.value"},
          "B": {"type": "test.scale", "input": "x.valeu"},
          "o": {"type": "test.sgd", "minimize": "B.out", "parameters": "Q"}
        }, "schedule": [{"run": ["o", "p"]}]}
        """
        #expect(problems(text) == [
            "p.json:3:40: $.stages.A.input: no stage 'xx' (did you mean 'x'?)",
            "p.json:5:64: $.stages.o.parameters: no stage 'Q'",
            "p.json:6:31: $.schedule[0].run[1]: no stage 'p'",
            "p.json:4:40: $.stages.B.input: stage 'x' (test.source) has no output 'valeu'; it has value (did you mean 'value'?)",
        ])
    }

    @Test func reportsMissingPortsAndTypeMismatches() {
        let text = """
        {"name": "p", "steps": 1, "stages": {
          "x": {"type": "test.source", "size": 3},
          "y": {"type": "test.source", "size": 4},
          "A": {"type": "test.scale", "input": "x.valeu"},
          "D": {"type": "test.distance", "a": "x.value", "b": "y.value"},
          "o": {"type": "test.sgd", "minimize": "D.loss", "parameters": "x"}
        }, "schedule": [{"run": ["o"]}]}
        """
        #expect(problems(text) == [
            "p.json:4:40: $.stages.A.input: stage 'x' (test.source) has no output 'valeu'; it has value (did you mean 'value'?)",
            "p.json:5:55: $.stages.D.b: shape tensor [4] does not match tensor [3]",
        ])
    }

    @Test func reportsCycles() {
        let text = """
        {"name": "p", "steps": 1, "stages": {
          "A": {"type": "test.scale", "input": "B.out"},
          "B": {"type": "test.scale", "input": "A.out"},
          "o": {"type": "test.sgd", "minimize": "A.out", "parameters": "A"}
        }, "schedule": [{"run": ["o"]}]}
        """
        #expect(problems(text) == ["p.json:2:8: $.stages.A: the stages form a cycle: A -> B -> A"])
    }

    @Test func reportsTopLevelProblems() {
        let text = #"{"name": "", "stpes": 3, "stages": {}, "schedule": [{"runn": ["o"]}, 3]}"#
        #expect(problems(text) == [
            "p.json:1:23: $.stpes: unknown key 'stpes' (did you mean 'steps'?)",
            "p.json:1:10: $.name: the name must not be empty",
            "p.json:1:1: missing the run length: give 'steps' or 'epochs' (or --steps when running it)",
            "p.json:1:36: $.stages: a pipeline needs at least one stage",
            "p.json:1:62: $.schedule[0].runn: unknown key 'runn' (did you mean 'run'?)",
            "p.json:1:53: $.schedule[0]: missing key 'run'",
            "p.json:1:70: $.schedule[1]: expected a phase object like {\"run\": [\"optD\"]}, found an integer",
        ])
    }

    /// The sections and phases are checked from their declaration (`PipelineDocument.keys`);
    /// inside a section, problems come in the order of the text.
    @Test func reportsSectionAndPhaseProblems() {
        let text = """
        {"$schema": "ganflow.schema.json", "name": "p", "steps": 1, "epochs": 2, "output": "",
         "checkpoint": {"evry": 5, "keep": 0}, "distributed": {"bucketKiB": 0, "syncBatchNorm": "yes"}, "log": 3,
         "stages": {"a.b": {"type": "test.source"}},
         "schedule": [{"repeat": 0, "run": ["x", 3]}, {"run": 7}, {"run": "x", "repeat": 1e6}]}
        """
        #expect(problems(text) == [
            "p.json:1:71: $.epochs: give either 'steps' or 'epochs', not both",
            "p.json:1:84: $.output: expected a directory path string, found a string",
            "p.json:2:25: $.checkpoint.evry: unknown key 'evry' (did you mean 'every'?)",
            "p.json:2:36: $.checkpoint.keep: expected an integer >= 1, found 0",
            "p.json:2:104: $.log: expected an object, found an integer",
            "p.json:2:69: $.distributed.bucketKiB: expected an integer from 1 to 1048576, found 0",
            "p.json:2:89: $.distributed.syncBatchNorm: expected true or false, found \"yes\"",
            "p.json:3:20: $.stages[\"a.b\"]: stage id 'a.b' must be non-empty, without '.' or spaces",
            "p.json:4:26: $.schedule[0].repeat: expected an integer >= 1, found 0",
            "p.json:4:36: $.schedule[0].run: expected a stage id or a list of stage ids, found an array",
            "p.json:4:55: $.schedule[1].run: expected a stage id or a list of stage ids, found an integer",
            "p.json:4:82: $.schedule[2].repeat: expected an integer >= 1, found 1000000",
        ])
        #expect(problems(#"{"name": "p", "steps": 1, "stages": {"x": {"type": "test.source"}}}"#) == [
            "p.json:1:1: missing key 'schedule' (the phases of one step)",
        ])
        #expect(problems(#"{"steps": 1, "description": 3, "stages": [], "schedule": []}"#) == [
            "p.json:1:1: missing key 'name'",
            "p.json:1:29: $.description: expected a string, found an integer",
            "p.json:1:42: $.stages: expected an object of stages, found an array",
            "p.json:1:58: $.schedule: the schedule needs at least one phase",
        ])
    }

    @Test func decodesTheTopLevelWithItsDefaults() throws {
        let text = """
        {"$schema": "ganflow.schema.json", "name": "p", "description": "d", "epochs": 2, "distributed": {"bucketKiB": 64},
         "stages": {"x": {"type": "test.source"}}, "schedule": [{"run": "x"}, {"run": ["x", "x"], "repeat": 5}]}
        """
        let doc = try PipelineDocument.parse(text, file: "p.json")
        #expect(doc.name == "p" && doc.seed == 0 && doc.steps == nil && doc.epochs == 2 && doc.output == nil)
        #expect(doc.checkpointEvery == 500 && doc.checkpointKeep == 3 && doc.logEvery == 50)
        #expect(doc.distributed.bucketKiB == 64 && !doc.distributed.syncBatchNorm)
        #expect(doc.stageOrder == ["x"])
        #expect(doc.schedule.map(\.run) == [["x"], ["x", "x"]] && doc.schedule.map(\.repeats) == [1, 5])
        #expect(doc.schedule.map(\.path.description) == ["$.schedule[0]", "$.schedule[1]"])
    }

    @Test func aLengthGivenOnTheCommandLineStandsInForStepsAndEpochs() throws {
        let text = #"{"name": "p", "stages": {"x": {"type": "test.source"}}, "schedule": [{"run": ["x"]}]}"#
        #expect(problems(text) == ["p.json:1:1: missing the run length: give 'steps' or 'epochs' (or --steps when running it)"])
        let doc = try PipelineDocument.parse(bytes: Array(text.utf8), file: "p.json", lengthGiven: true)
        #expect(doc.steps == nil && doc.epochs == nil)
    }

    @Test func malformedJSONGivesLineAndColumn() {
        #expect(problems("{\"name\": \"p\",\n  \"steps\": 1\n  \"stages\": {}}") == [
            "p.json:3:3: malformed JSON: unexpected '\"', expected ',' or '}'",
        ])
    }

    @Test func warnsAboutUnusedOutputs() throws {
        let text = """
        {"name": "p", "steps": 1, "stages": {
          "x": {"type": "test.source"}, "unused": {"type": "test.source"},
          "A": {"type": "test.scale", "input": "x.value"},
          "D": {"type": "test.distance", "a": "A.out", "b": "x.value"},
          "o": {"type": "test.sgd", "minimize": "D.loss", "parameters": "A"}
        }, "schedule": [{"run": ["o"]}]}
        """
        let doc = try PipelineDocument.parse(text, file: "p.json")
        let p = try PipelineBuilder(registry: toyRegistry).build(doc, outputDirectory: NSTemporaryDirectory())
        #expect(p.warnings.map(\.description) == ["p.json:2:43: warning: $.stages.unused: no stage reads the outputs of 'unused'"])
    }
}

@Suite struct ScenarioValidationTests {
    @Test func checksShapesAtEveryScenario() {
        let text = """
        {"name": "p", "steps": 1, "stages": {
          "grow": {"type": "test.growth", "sizes": [4, 8]},
          "x": {"type": "test.sized", "size": "grow.size"},
          "y": {"type": "test.source", "size": 4},
          "D": {"type": "test.distance", "a": "y.value", "b": "x.value"},
          "A": {"type": "test.scale", "input": "y.value"},
          "o": {"type": "test.sgd", "minimize": "D.loss", "parameters": "A"}
        }, "schedule": [{"run": ["o"]}]}
        """
        do {
            let doc = try PipelineDocument.parse(text, file: "p.json")
            _ = try PipelineBuilder(registry: scenarioRegistry).build(doc, outputDirectory: NSTemporaryDirectory())
            Issue.record("a mismatch at size 8 must be found before the first step")
        } catch let e as PipelineErrors {
            #expect(e.errors.map(\.description) == [
                "p.json:5:55: $.stages.D.b: at size 8 (from 'grow'): shape tensor [8] does not match tensor [4]",
            ])
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
