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
