import Foundation
import GANFlowTestSupport
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

/// What a user does with a finished run, through the commands themselves: export (safetensors and
/// ONNX), sample, report and compare, on a 2-step run of the lesson's MLP GAN.
@Suite struct RunCommandLineTests {
    static let images = fixture("idx/t10k-256-images-idx3-ubyte.gz")

    @Test func exportSampleReportAndCompareATrainedRun() throws {
        let root = TestDirectories.make("cli-run"), run = root + "/mlp"
        let pipeline = repositoryRoot + "/pipelines/mlp-gan-fashion.json"
        let (trained, log) = try execute(ganflowExecutable, ["run", pipeline, "--steps", "2", "--out", run, "--threads", "1",
                                                           "--set", "data.images=\(Self.images)"])
        #expect(trained == 0, "\(log)")
        let files = FileManager.default

        let (e, eOut) = try execute(ganflowExecutable, ["export", run, "--stage", "G", "--out", root + "/g.safetensors"])
        #expect(e == 0 && files.fileExists(atPath: root + "/g.safetensors"), "\(eOut)")
        let (o, oOut) = try execute(ganflowExecutable, ["export", run, "--stage", "G", "--format", "onnx", "--out", root + "/g.onnx"])
        #expect(o == 0 && ((try? files.attributesOfItem(atPath: root + "/g.onnx")[.size] as? Int) ?? 0) > 1_000_000, "\(oOut)")
        let (bad, badOut) = try execute(ganflowExecutable, ["export", run, "--stage", "nope", "--out", root + "/x.safetensors"])
        #expect(bad == 1 && badOut.contains("nope"), "\(badOut)")

        let (s, sOut) = try execute(ganflowExecutable, ["sample", run, "--count", "5", "--out", root + "/samples"])
        let pngs = ((try? files.contentsOfDirectory(atPath: root + "/samples")) ?? []).filter { $0.hasSuffix(".png") }
        #expect(s == 0 && pngs.count == 5, "\(sOut) \(pngs)")

        try? files.removeItem(atPath: run + "/report.html")
        let (r, rOut) = try execute(ganflowExecutable, ["report", run])
        let html = (try? String(contentsOfFile: run + "/report.html", encoding: .utf8)) ?? ""
        #expect(r == 0 && html.contains("<html") && html.contains("mlp-gan-fashion"), "\(rOut)")

        let (c, cOut) = try execute(ganflowExecutable, ["compare", pipeline, "--steps", "1", "--out", root + "/compare",
                                                       "--variant", "nonsaturating:--set data.images=\(Self.images)",
                                                       "--variant", "hinge:--set data.images=\(Self.images) --set loss.type=loss.hinge"])
        let page = (try? String(contentsOfFile: root + "/compare/compare.html", encoding: .utf8)) ?? ""
        #expect(c == 0 && page.contains("nonsaturating") && page.contains("hinge"), "\(cOut)")
    }
}
