import Foundation
import GANFlowTestSupport
import PipelineGraph
import TensorRuntime
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
        // `ganflow validate pipelines/*.json` meets the schema the pipelines name, and skips it.
        let schema = repositoryRoot + "/pipelines/ganflow.schema.json"
        let (all, allOutput) = try execute(ganflowExecutable, ["validate", schema, good])
        #expect(all == 0 && allOutput == "\(schema): skipped (a JSON Schema, not a pipeline)\n\(good): ok (8 stages)\n", "\(allOutput)")
    }

    @Test func graphStagesAndSchemaPrintWhatTheyPromise() throws {
        let (g, graph) = try execute(ganflowExecutable, ["graph", repositoryRoot + "/pipelines/mlp-gan-fashion.json", "--format", "mermaid"])
        #expect(g == 0 && graph.hasPrefix("flowchart LR\n") && graph.contains(#"n_G["G<br/>generator.mlp"]"#), "\(graph)")
        let (d, dot) = try execute(ganflowExecutable, ["graph", repositoryRoot + "/pipelines/mlp-gan-fashion.json"])
        #expect(d == 0 && dot.hasPrefix("digraph"), "\(dot)")
        let (s, stages) = try execute(ganflowExecutable, ["stages"])
        #expect(s == 0 && stages.contains("\ngenerator.dcgan\n") && stages.contains("\nmetric.fid\n"), "\(stages.prefix(500))")
        // Then the top level of a pipeline file, after the last stage type.
        let top = stages.range(of: "\nThe top level of a pipeline file:\n")
        #expect(top != nil && stages[top!.upperBound...].contains("    schedule: "), "\(stages.suffix(800))")
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
        // `.onnx` chooses ONNX without --format (it wrote a state_dict under that name): a ModelProto
        // starts with its IR version, then the producer's name.
        let (o, oOut) = try execute(ganflowExecutable, ["export", run, "--stage", "G", "--out", root + "/g.onnx"])
        let onnx = (try? Data(contentsOf: URL(fileURLWithPath: root + "/g.onnx"))) ?? Data()
        #expect(o == 0 && onnx.count > 1_000_000 && onnx.prefix(11).dropFirst(2) == Data([0x12, 7] + Array("ganflow".utf8)), "\(oOut)")
        let (clash, clashOut) = try execute(ganflowExecutable, ["export", run, "--stage", "G", "--format", "safetensors", "--out", root + "/h.onnx"])
        #expect(clash == 1 && clashOut.contains("--format safetensors would write safetensors into '\(root)/h.onnx', whose extension .onnx names onnx")
                && !files.fileExists(atPath: root + "/h.onnx"), "\(clashOut)")
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

/// `ganflow run` and `ganflow compare` options the other suites drive through the library, here
/// through the binary, on `Fixtures/pipelines/faults/killtest.json` (the MLP GAN, milliseconds a step).
@Suite struct RunOptionTests {
    /// A copy of killtest.json in `dir` (its data path made absolute), with `edit` applied.
    static func pipeline(in dir: String, name: String = "killtest", _ edit: (String) -> String = { $0 }) throws -> String {
        let text = try String(contentsOfFile: fixture("pipelines/faults/killtest.json"), encoding: .utf8)
            .replacingOccurrences(of: "../../idx/", with: fixture("idx/"))
        let path = dir + "/\(name).json"
        try edit(text).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The generator's and discriminator's weights in the newest checkpoint of `dir`.
    static func weights(_ dir: String) throws -> [String: [Float]] {
        let archive = try SafeTensorsArchive(contentsOf: try #require(Checkpoint.list(in: dir).last, "no checkpoint in \(dir)"))
        return try Dictionary(uniqueKeysWithValues: archive.names.filter { $0.hasPrefix("G/") || $0.hasPrefix("D/") }.map { ($0, try archive.tensor($0).scalars) })
    }

    @Test func seedAndSchedulerFromTheCommandLine() throws {
        let root = temporaryDirectory("run-seed"), file = fixture("pipelines/faults/killtest.json")
        func train(_ name: String, _ extra: [String]) throws -> [String: [Float]] {
            let (status, output) = try execute(ganflowExecutable, ["run", file, "--steps", "2", "--out", root + "/" + name, "--threads", "1", "--no-tensorboard"] + extra)
            #expect(status == 0, "\(output)")
            return try Self.weights(root + "/" + name)
        }
        let dispatch = try train("dispatch", ["--seed", "5"]), serial = try train("serial", ["--seed", "5", "--scheduler", "serial"])
        let other = try train("other", ["--seed", "6"]), fileSeed = try train("file", [])
        #expect(!dispatch.isEmpty && dispatch == serial, "--scheduler serial changed the weights of seed 5")
        #expect(other != dispatch, "--seed 6 gave seed 5's weights")
        #expect(fileSeed != dispatch, "--seed 5 gave the file's seed 3's weights")
        let (bad, badOutput) = try execute(ganflowExecutable, ["run", file, "--scheduler", "fifo"])
        #expect(bad == 1 && badOutput.hasPrefix("Error: "), "\(badOutput)")
    }

    @Test func stepsStandInForAPipelinesMissingLength() throws {
        let root = temporaryDirectory("run-length")
        let file = try Self.pipeline(in: root) { $0.replacingOccurrences(of: "\"steps\": 1000000,", with: "") }
        let (missing, missingOutput) = try execute(ganflowExecutable, ["run", file, "--out", root + "/run", "--no-tensorboard"])
        #expect(missing == 1 && missingOutput == "error: \(file):1:1: missing the run length: give 'steps' or 'epochs' (or --steps when running it)\n", "\(missingOutput)")
        let (status, output) = try execute(ganflowExecutable, ["run", file, "--steps", "2", "--out", root + "/run", "--threads", "1", "--no-tensorboard"])
        #expect(status == 0 && output.contains("finished at step 2/2 in "), "\(output)")
    }

    @Test func aRunDirectoryWithCheckpointsIsOnlyResumed() throws {
        // Started afresh there, a run cut metrics.jsonl to its own steps and left the earlier
        // run's later checkpoints, which `sample` and `--resume` then took for its own.
        let root = temporaryDirectory("run-exists"), file = try Self.pipeline(in: root), dir = root + "/run"
        let base = ["run", file, "--out", dir, "--threads", "1", "--no-tensorboard"]
        let (first, firstOutput) = try execute(ganflowExecutable, base + ["--steps", "3"])
        #expect(first == 0, "\(firstOutput)")
        let metrics = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8), checkpoints = Checkpoint.list(in: dir)
        let (again, againOutput) = try execute(ganflowExecutable, base + ["--steps", "2", "--set", "loss.type=loss.hinge"])
        #expect(again == 1 && againOutput == "error: \(dir): holds a run already (its newest checkpoint is step-00000003.safetensors): --resume continues it; to start again, give another --out (\(dir)-2 is free) or remove \(dir)\n", "\(againOutput)")
        #expect(try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8) == metrics)
        #expect(Checkpoint.list(in: dir) == checkpoints && checkpoints.last?.hasSuffix("/step-00000003.safetensors") == true)
        #expect(!((try? String(contentsOfFile: dir + "/pipeline.json", encoding: .utf8)) ?? "").contains("loss.hinge"))
        let (resumed, resumedOutput) = try execute(ganflowExecutable, base + ["--steps", "4", "--resume"])
        #expect(resumed == 0 && resumedOutput.contains("finished at step 4/4"), "\(resumedOutput)")
    }

    /// Reliability, Divergence: the README's example, as printed.
    @Test func aDivergingRunStopsAtTheFirstNonFiniteLossWithStatus1() throws {
        let dir = temporaryDirectory("diverge") + "/run"
        let (status, output) = try execute(ganflowExecutable, [
            "run", repositoryRoot + "/pipelines/dcgan28-notebook.json", "--out", dir, "--threads", "1", "--no-tensorboard",
            "--set", "data.images=\(fixture("idx/t10k-256-images-idx3-ubyte.gz"))", "--set", "optD.lr=1e30", "--set", "optG.lr=1e30",
        ])
        #expect(status == 1, "\(output)")
        #expect(output.hasSuffix("error: step 1: 'loss.discriminator' is NaN (stage 'loss'); stopping at the first non-finite value; no checkpoint was written before it\n"), "\(output)")
        #expect(Checkpoint.list(in: dir).isEmpty)
    }

    /// `compare FILE...`: several pipeline files, each a variant named after its pipeline.
    @Test func compareSeveralFiles() throws {
        let root = temporaryDirectory("compare-files")
        let a = try Self.pipeline(in: root)
        let b = try Self.pipeline(in: root, name: "hinge") {
            $0.replacingOccurrences(of: "\"name\": \"killtest\"", with: "\"name\": \"killtest-hinge\"")
                .replacingOccurrences(of: "loss.nonsaturating", with: "loss.hinge")
        }
        let (status, output) = try execute(ganflowExecutable, ["compare", a, b, "--steps", "2", "--out", root + "/compare",
                                                               "--set", "optG.lr=0.0005"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("== killtest: \(root)/compare/killtest\n") && output.contains("== killtest-hinge: \(root)/compare/killtest-hinge\n"), "\(output)")
        let page = (try? String(contentsOfFile: root + "/compare/compare.html", encoding: .utf8)) ?? ""
        #expect(page.contains("killtest-hinge") && page.contains("loss.hinge"), "\(page.prefix(300))")
        for name in ["killtest", "killtest-hinge"] {
            let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/compare/\(name)/summary.json"))) as? [String: Any]
            #expect(summary?["lastStep"] as? Int == 2, "\(name): \(String(describing: summary))")
            // `--set` reached every variant.
            let resolved = (try? String(contentsOfFile: root + "/compare/\(name)/pipeline.json", encoding: .utf8)) ?? ""
            #expect(resolved.contains("0.0005"), "\(name): \(resolved.prefix(300))")
        }
        // A --set that does not fit a file names that file, and nothing runs.
        let (bad, badOutput) = try execute(ganflowExecutable, ["compare", a, b, "--steps", "2", "--out", root + "/compare-bad",
                                                             "--set", "nosuch.lr=1"])
        #expect(bad == 1 && badOutput.contains("error: --set on \(a): $.stages.nosuch: no stage 'nosuch'"), "\(badOutput)")
        #expect(!FileManager.default.fileExists(atPath: root + "/compare-bad"))
        // The same comparison again into its folder is refused before any variant trains.
        let (twice, twiceOutput) = try execute(ganflowExecutable, ["compare", a, b, "--steps", "3", "--out", root + "/compare"])
        #expect(twice == 1 && twiceOutput == "error: \(root)/compare/killtest: holds a run already: give the comparison another --out (\(root)/compare-2 is free), or remove \(root)/compare\n", "\(twiceOutput)")
    }

    /// `compare DIR...`: finished runs, trained apart, compared as they are without training.
    @Test func compareFinishedRunFolders() throws {
        let root = temporaryDirectory("compare-folders"), file = try Self.pipeline(in: root)
        for (name, extra) in [("short", ["--steps", "2"]), ("hinge", ["--steps", "3", "--set", "loss.type=loss.hinge"])] {
            let (status, output) = try execute(ganflowExecutable, ["run", file, "--out", root + "/" + name, "--threads", "1", "--no-tensorboard"] + extra)
            #expect(status == 0, "\(output)")
        }
        let (status, output) = try execute(ganflowExecutable, ["compare", root + "/short", root + "/hinge/", "--out", root + "/both"])
        #expect(status == 0 && output == "wrote \(root)/both/compare.html\n", "\(output)")
        let page = (try? String(contentsOfFile: root + "/both/compare.html", encoding: .utf8)) ?? ""
        // Named after their folders; the table has each run's steps; the differences show the loss.
        #expect(page.contains("<b>short</b>") && page.contains("<b>hinge</b>"), "\(page.count) characters")
        #expect(page.contains("<tr><td>steps</td><td>2</td><td>3</td></tr>"), "\(page.count) characters")
        #expect(page.contains("<td>$.stages.loss.type</td><td>&quot;loss.nonsaturating&quot;</td><td>&quot;loss.hinge&quot;</td>"), "\(page.suffix(300))")

        // A folder that is not a run names the file it lacks; nothing is written.
        try FileManager.default.createDirectory(atPath: root + "/empty", withIntermediateDirectories: true)
        let (notRun, notRunOutput) = try execute(ganflowExecutable, ["compare", root + "/short", root + "/empty", "--out", root + "/bad"])
        #expect(notRun == 1 && notRunOutput.hasPrefix("error: \(root)/empty/") && notRunOutput.contains("is \(root)/empty a run directory?"), "\(notRunOutput)")
        #expect(!FileManager.default.fileExists(atPath: root + "/bad/compare.html"))
        // Folders and files mixed, one folder, and running options are refused.
        let (mixed, mixedOutput) = try execute(ganflowExecutable, ["compare", root + "/short", file])
        #expect(mixed == 1 && mixedOutput.contains("not both: \(root)/short is a folder, \(file) is not"), "\(mixedOutput)")
        let (missing, missingOutput) = try execute(ganflowExecutable, ["compare", root + "/short", root + "/nosuch"])
        #expect(missing == 1 && missingOutput.contains("\(root)/nosuch: no such file or folder"), "\(missingOutput)")
        let (one, oneOutput) = try execute(ganflowExecutable, ["compare", root + "/short"])
        #expect(one == 1 && oneOutput.contains("give two or more run folders"), "\(oneOutput)")
        let (steps, stepsOutput) = try execute(ganflowExecutable, ["compare", root + "/short", root + "/hinge", "--steps", "5", "--seed", "2"])
        #expect(steps == 1 && stepsOutput.contains("--steps, --seed apply when running pipelines, not to finished runs"), "\(stepsOutput)")
    }
}
