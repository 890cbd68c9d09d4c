import ArgumentParser
import Foundation
import Logging
import MPICollectives
import PipelineGraph
import Reporting
import PipelineStages
import TensorRuntime

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Run variants of pipelines with the same seed and data, then write compare.html; or compare finished runs.",
        discussion: """
            Each pipeline file is a variant named after its pipeline; with one file, each --variant
            is the file with its own overrides:

              ganflow compare pipelines/dcgan-fashion.json --steps 500 \\
                --variant "nonsaturating:" --variant "hinge:--set loss.type=loss.hinge" \\
                --variant "lsgan:--set loss.type=loss.lsgan"
              ganflow compare pipelines/dcgan-fashion.json pipelines/wgan-gp-fashion.json
              ganflow compare pipelines/dcgan-fashion.json pipelines/stylegan2-fashion.json \
                --time-limit 30m --set features.count=10000

            Every --set applies to every variant (a stage missing from one is an error naming it).

            Folders of finished runs (trained apart: at other times, with other options, or under
            mpirun with data-parallel ranks) are compared as they are, without training:

              ganflow compare runs/dcgan-fashion runs/stylegan2-fashion --out runs/dcgan-vs-stylegan2

            Each run is named after its folder; --out defaults to runs/compare-<first folder name>.

            Under mpirun (mpirun -np N ganflow compare ...) variant i runs on rank i mod N, each
            variant in one process, and rank 0 writes compare.html when every rank is done.

            Variants run one after another (each uses every core) in <out>/<variant>, each with its
            report.html; compare.html overlays their curves, shows the final grids side by side,
            tabulates the final values with the best metric marked, and lists how the resolved
            pipelines differ.
            """)

    @Argument(help: "Pipeline files to run, or folders of finished runs to compare as they are.")
    var files: [String]

    @Option(help: "A variant of the (single) file: 'name:--set k=v --set k2=v2' (repeatable).")
    var variant: [String] = []

    @Option(name: .customLong("set"), help: "Override a value in every variant, as stageId.key=value (repeatable), before a --variant's own.")
    var assignments: [String] = []

    @Option(help: "Steps for every variant (default: each pipeline's own length).")
    var steps: Int?

    @Option(name: .customLong("time-limit"), help: ArgumentHelp("Give every variant the same wall-clock: each stops when it has trained this long (90s, 20m, 1h30m), with a checkpoint and its report.", valueName: "duration"))
    var timeLimit: String?

    @Option(help: "Seed for every variant (default: the first pipeline's).")
    var seed: Int?

    @Option(help: "Output folder (default: runs/compare-<first pipeline name>).")
    var out: String?

    /// The arguments that are folders: finished runs, compared without training.
    var runFolders: [String] {
        files.filter { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
        }
    }

    /// Each run folder's name: its last path component, or the path as given where two share one.
    func runNames() -> [String] {
        let last = runFolders.map { (($0 as NSString).standardizingPath as NSString).lastPathComponent }
        return zip(runFolders, last).map { folder, name in last.filter { $0 == name }.count > 1 ? folder : name }
    }

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one pipeline file") }
        let folders = runFolders
        if !folders.isEmpty {
            let pipelines = files.filter { !folders.contains($0) }
            if let missing = pipelines.first(where: { !FileManager.default.fileExists(atPath: $0) }) {
                throw ValidationError("\(missing): no such file or folder")
            }
            if !pipelines.isEmpty {
                throw ValidationError("give pipeline files to run or folders of finished runs, not both: \(folders.joined(separator: ", ")) \(folders.count == 1 ? "is a folder" : "are folders"), \(pipelines.joined(separator: ", ")) \(pipelines.count == 1 ? "is not" : "are not")")
            }
            if folders.count < 2 { throw ValidationError("give two or more run folders to compare") }
            let running = [("--variant", !variant.isEmpty), ("--set", !assignments.isEmpty), ("--steps", steps != nil),
                           ("--time-limit", timeLimit != nil), ("--seed", seed != nil)].filter(\.1).map(\.0)
            if !running.isEmpty {
                throw ValidationError("\(running.joined(separator: ", ")) \(running.count == 1 ? "applies" : "apply") when running pipelines, not to finished runs")
            }
            return
        }
        if !variant.isEmpty && files.count != 1 { throw ValidationError("--variant applies to a single pipeline file; give one file") }
        if variant.isEmpty && files.count < 2 { throw ValidationError("give two or more files, or one file with --variant") }
        _ = try variants()
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1") }
        if let seed, seed < 0 { throw ValidationError("--seed must be >= 0") }
        _ = try parseTimeLimit(timeLimit)
    }

    /// (name, file, overrides) of each variant.
    func variants() throws -> [(name: String, file: String, overrides: [String])] {
        if variant.isEmpty { return files.map { ("", $0, []) } }
        return try variant.map { text in
            guard let colon = text.firstIndex(of: ":") else {
                throw ValidationError("--variant expects 'name:--set k=v ...', got '\(text)'")
            }
            let name = String(text[..<colon]).trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, !name.contains("/") else { throw ValidationError("--variant needs a name without '/' before ':', got '\(text)'") }
            let words = text[text.index(after: colon)...].split(whereSeparator: \.isWhitespace).map(String.init)
            var overrides: [String] = []
            var i = 0
            while i < words.count {
                guard words[i] == "--set", i + 1 < words.count else {
                    throw ValidationError("--variant '\(name)': expected '--set k=v' pairs, found '\(words[i])'")
                }
                overrides.append(words[i + 1])
                i += 2
            }
            return (name, files[0], overrides)
        }
    }

    func run() throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        if !runFolders.isEmpty { return try compareFinishedRuns() }
        let comm: any Communicator
        do {
            comm = try MPIEnvironment.communicator()
        } catch {
            throw report(error)
        }
        defer { (comm as? MPICommunicator)?.finalize() }
        do {
            var docs: [(name: String, doc: PipelineDocument)] = []
            var commonSeed = seed
            for v in try variants() {
                var overrides = assignments + v.overrides
                if let s = commonSeed { overrides.append("seed=\(s)") }
                let doc = try PipelineDocument.load(file: v.file, overrides: overrides, lengthGiven: steps != nil)
                commonSeed = commonSeed ?? Int(doc.seed)
                docs.append((v.name.isEmpty ? doc.name : v.name, doc))
            }
            let names = docs.map(\.name)
            if Set(names).count != names.count { throw ValidationError("variants need distinct names, got \(names.joined(separator: ", "))") }
            let folder = out ?? "runs/compare-\(docs[0].doc.name)"
            // Refused before any variant trains: the folder of an earlier comparison.
            if let taken = names.first(where: { Runner.existingRun(in: (folder as NSString).appendingPathComponent($0)) != nil }) {
                throw PipelineErrors([PipelineError("run.exists", file: (folder as NSString).appendingPathComponent(taken),
                    "holds a run already: give the comparison another --out (\(Runner.freeSibling(of: folder)) is free), or remove \(folder)")])
            }
            var directories: [String] = []
            for (i, (name, doc)) in docs.enumerated() {
                let dir = (folder as NSString).appendingPathComponent(name)
                directories.append(dir)
                // One variant per rank: each a whole single-process run.
                guard i % comm.size == comm.rank else { continue }
                print(comm.size > 1 ? "== \(name) on rank \(comm.rank): \(dir)" : "== \(name): \(dir)")
                let pipeline = try PipelineBuilder(registry: .standard).build(doc, outputDirectory: dir)
                printWarnings(pipeline.warnings)
                var options = Runner.Options(runDirectory: dir)
                options.stepsOverride = steps
                options.timeLimit = try parseTimeLimit(timeLimit)
                options.observers = [try TensorBoardScalars(runDirectory: dir)]
                let summary = try Runner(pipeline: pipeline, options: options, logger: Logger(label: "ganflow")).run()
                try RunReport.write(runDirectory: dir)
                if summary.interrupted { throw ExitCode(130) }
            }
            // Variants take different times: wait for the others without a time limit.
            try comm.barrier(limit: .infinity)
            guard comm.isLeader else { return }
            print("wrote \(try CompareReport.write(runDirectories: directories, names: names, to: folder))")
        } catch let e as ExitCode {
            throw e
        } catch let e as ValidationError {
            throw e
        } catch {
            throw report(error)
        }
    }

    /// compare.html of finished run folders, without training.
    func compareFinishedRuns() throws {
        let names = runNames()
        let folder = out ?? "runs/compare-\(names[0])"
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            print("wrote \(try CompareReport.write(runDirectories: runFolders, names: names, to: folder))")
        } catch {
            throw report(error)
        }
    }
}

extension CompareCommand: RanksWorkTogether {
    /// Pipelines train one variant per rank; finished run folders are only read, on rank 0.
    var usesEveryRank: Bool { runFolders.isEmpty }
}
