import Foundation
import Testing

/// The README's commands as a user types them: exit status and what they print.
@Suite struct CommandLineTests {
    @Test func validateSaysOkOrPrintsEveryProblemAndFails() throws {
        let good = repositoryRoot + "/pipelines/mlp-gan-fashion.json", bad = fixture("pipelines/invalid/cycle.json")
        let (ok, okOutput) = try execute(ganflowExecutable, ["validate", good])
        #expect(ok == 0 && okOutput == "\(good): ok (8 stages)\n", "\(okOutput)")
        let expected = try String(contentsOfFile: fixture("pipelines/invalid/cycle.expected"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let (status, output) = try execute(ganflowExecutable, ["validate", good, bad])
        #expect(status == 1, "\(output)")
        #expect(output.contains("error: \(fixture("pipelines/invalid/"))\(expected)"), "\(output)")
    }

    @Test func graphStagesAndSchemaPrintWhatTheyPromise() throws {
        let (g, graph) = try execute(ganflowExecutable, ["graph", repositoryRoot + "/pipelines/mlp-gan-fashion.json", "--format", "mermaid"])
        #expect(g == 0 && graph.hasPrefix("flowchart LR\n") && graph.contains(#"n_G["G<br/>generator.mlp"]"#), "\(graph)")
        let (d, dot) = try execute(ganflowExecutable, ["graph", repositoryRoot + "/pipelines/mlp-gan-fashion.json"])
        #expect(d == 0 && dot.hasPrefix("digraph"), "\(dot)")
        let (s, stages) = try execute(ganflowExecutable, ["stages"])
        #expect(s == 0 && stages.contains("\ngenerator.dcgan\n") && stages.contains("\nmetric.fid\n"), "\(stages.prefix(500))")
        let (j, schema) = try execute(ganflowExecutable, ["schema"])
        #expect(j == 0)
        let object = try JSONSerialization.jsonObject(with: Data(schema.utf8)) as? [String: Any]
        #expect(object?["$schema"] as? String == "https://json-schema.org/draft/2020-12/schema")
    }
}
