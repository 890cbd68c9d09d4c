import Foundation
import Testing
@testable import PipelineGraph

@Suite struct DescribeTests {
    @Test func stageListShowsKeysDefaultsAndDocs() {
        let text = Describe.stageList(toyRegistry)
        #expect(text.contains("test.sgd\n    Plain gradient descent.\n"))
        #expect(text.contains("    lr: number >= 0 (default 0.1) - Step size.\n"))
        #expect(text.contains("    minimize: wire (required) - Loss.\n"))
        #expect(text.contains("    every: int >= 1 (default 1) - Run only on steps divisible by this (sinks, metrics).\n"))
    }

    @Test func schemaNamesEveryTypeAndItsRequiredKeys() throws {
        let schema = Describe.jsonSchema(toyRegistry)
        // The schema is itself valid JSON text.
        let reparsed = try JSONParser.parse(schema.serialized()).value
        #expect(reparsed == schema)
        let stage = schema["properties"]?["stages"]?["additionalProperties"]
        #expect(stage?["properties"]?["type"]?["enum"] == .array(toyRegistry.sortedNames.map(JSONValue.string)))
        guard case .array(let variants)? = stage?["allOf"] else { Issue.record("no variants"); return }
        let sgd = variants.first { $0["if"]?["properties"]?["type"]?["const"] == .string("test.sgd") }
        #expect(sgd?["then"]?["required"] == .array(["type", "minimize", "parameters"].map(JSONValue.string)))
        #expect(sgd?["then"]?["properties"]?["lr"]?["minimum"] == .number(0))
        #expect(sgd?["then"]?["additionalProperties"] == .bool(false))
    }

    /// The top level of the schema is `PipelineDocument.keys`: a phase's `run` is one id or a
    /// list, and the sections are there with their keys.
    @Test func schemaOfTheTopLevelComesFromItsDeclaration() {
        let schema = Describe.jsonSchema(toyRegistry)
        let properties = schema["properties"]?.objectEntries?.map(\.0)
        #expect(properties == PipelineDocument.keys.map(\.name))
        #expect(schema["required"] == .array(["name", "stages", "schedule"].map(JSONValue.string)))
        #expect(schema["additionalProperties"] == .bool(false))
        let run = schema["properties"]?["schedule"]?["items"]?["properties"]?["run"]
        #expect(run?["anyOf"] == .array([
            .object([("type", .string("string"))]),
            .object([("type", .string("array")), ("items", .object([("type", .string("string")), ("description", .string("A stage with an effect."))]))]),
        ]))
        let distributed = schema["properties"]?["distributed"]?["properties"]
        #expect(distributed?["bucketKiB"]?["maximum"] == .number(1_048_576))
        #expect(distributed?["syncBatchNorm"]?["default"] == .bool(false))
        #expect(schema["properties"]?["stages"]?["minProperties"] == .number(1))
        #expect(schema["properties"]?["stages"]?["propertyNames"]?["pattern"] == .string("^[^. ]+$"))
        #expect(schema["properties"]?["stages"]?["additionalProperties"]?["allOf"] != nil)
    }

    @Test func stageListShowsTheTopLevel() {
        let text = Describe.stageList(toyRegistry)
        #expect(text.contains("\nThe top level of a pipeline file:\n    $schema: a string (optional) - "))
        #expect(text.contains("\n    checkpoint: an object (default {}) - When to write checkpoints.\n        every: an integer >= 1 (default 500) - "))
        #expect(text.contains("\n        run: a stage id or a list of stage ids (required) - "))
    }

    @Test func graphRendersEdgesWithPortTypes() throws {
        let doc = try PipelineDocument.parse(SchedulerTests.diamond, file: "diamond.json")
        let p = try PipelineBuilder(registry: toyRegistry).build(doc, outputDirectory: NSTemporaryDirectory())
        let dot = Describe.dot(p)
        #expect(dot.hasPrefix("digraph \"diamond\" {"))
        #expect(dot.contains("  \"x\" -> \"A\" [label=\"value -> input\\ntensor [8]\"];\n"))
        #expect(dot.contains("  \"optA\" -> \"A\" [style=dashed, label=\"updates\"];\n"))
        let mermaid = Describe.mermaid(p)
        #expect(mermaid.hasPrefix("flowchart LR\n"))
        #expect(mermaid.contains("  n_A -- \"out → a\" --> n_AB\n"))
    }
}
