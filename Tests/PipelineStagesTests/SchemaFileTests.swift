import Foundation
import PipelineGraph
import PipelineStages
import Testing

/// pipelines/ganflow.schema.json, which the shipped pipelines name in "$schema", is what
/// `ganflow schema` generates now (`make check-schema` also runs a real validator with it).
@Suite struct SchemaFileTests {
    @Test func theShippedSchemaIsCurrent() throws {
        let file = PipelineFileTests.root + "/pipelines/ganflow.schema.json"
        let shipped = try String(contentsOfFile: file, encoding: .utf8)
        #expect(shipped == Describe.jsonSchema(.standard).serialized() + "\n", "pipelines/ganflow.schema.json is stale: run `make schema`")
    }

    @Test(arguments: PipelineFileTests.all)
    func everyShippedPipelineNamesTheSchema(_ name: String) throws {
        let doc = try PipelineDocument.load(file: PipelineFileTests.path(name))
        #expect(doc.json["$schema"] == .string("ganflow.schema.json"))
    }
}
