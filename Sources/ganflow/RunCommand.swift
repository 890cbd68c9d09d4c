import ArgumentParser
import Foundation
import Logging
import MPICollectives
import PipelineGraph
import Reporting
import PipelineStages
import TensorRuntime

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Train a pipeline: validate it, then run its schedule with progress, checkpoints and samples.",
        discussion: """
            Under mpirun (mpirun -np N ganflow run FILE) the ranks train one model data-parallel:
            every batch is split over the ranks, gradients are averaged, and rank 0 writes the run
            directory. The pipeline's "distributed" section sets synchronized batch norm and the
            gradient bucket size.
            """)

    @Argument(help: "Pipeline file.")
    var file: String

    @Option(help: "Run this many steps instead of the pipeline's length.")
    var steps: Int?

    @Option(name: .customLong("time-limit"), help: ArgumentHelp("Stop when the run has trained this long (90s, 20m, 1h30m), as Ctrl-C does: finish the step, checkpoint, final metrics and report. A resumed run counts the time before its checkpoint.", valueName: "duration"))
    var timeLimit: String?

    @Option(help: "Run directory (default: the pipeline's \"output\", else runs/<name>).")
    var out: String?

    @Option(help: "Seed for every random stream (default: the pipeline's).")
    var seed: Int?

    @Option(name: .customLong("set"), help: "Override a value, as stageId.key=value (repeatable); also a stage's type.")
    var assignments: [String] = []

    @Option(name: .customLong("init-from"), help: "Start a model stage from a state_dict file, as stageId=file.safetensors (repeatable; a resumed checkpoint wins).")
    var initFrom: [String] = []

    @Flag(help: "Continue from the newest checkpoint in the run directory.")
    var resume = false

    @Option(help: "Scheduler: dispatch (concurrent) or serial.")
    var scheduler: String = "dispatch"

    @Option(help: "Kernel threads (OpenMP); default GANFLOW_THREADS, OMP_NUM_THREADS or the core count.")
    var threads: Int?

    @Option(help: "What convolutions and matrix products compute in: fp32, or bf16 where the CPU has AVX512_BF16 or AMX (default: the pipeline's \"precision\", else fp32).")
    var precision: String?

    @Flag(inversion: .prefixedNo, help: "Write every logged scalar to a TensorBoard event file in the run directory.")
    var tensorboard = true

    @Flag(help: "Time every stage and op: print a table per stage and per op at the end, and write it (profile.txt) with a Chrome trace (trace.json: open it in Perfetto or chrome://tracing) into the run directory.")
    var profile = false

    func validate() throws {
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1") }
        if let seed, seed < 0 { throw ValidationError("--seed must be >= 0") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        _ = try parseTimeLimit(timeLimit)
        for item in initFrom where item.split(separator: "=", maxSplits: 1).count != 2 {
            throw ValidationError("--init-from expects stageId=file.safetensors, got '\(item)'")
        }
        if let precision, ComputePrecision(rawValue: precision) == nil {
            throw ValidationError("--precision must be one of \(ComputePrecision.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if SchedulerKind(rawValue: scheduler) == nil {
            throw ValidationError("--scheduler must be one of \(SchedulerKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        if let threads { Runtime.configure(threads: threads) }
        let logger = Logger(label: "ganflow")
        let comm: any Communicator
        do {
            comm = try MPIEnvironment.communicator()
        } catch {
            throw report(error)
        }
        let mpi = comm as? MPICommunicator
        // Load and build on every rank; if any rank fails, all stop together (and finalize).
        var built: (doc: PipelineDocument, dir: String, pipeline: Pipeline)?
        var failure: Error?
        do {
            var overrides = assignments
            if let seed { overrides.append("seed=\(seed)") }
            if let precision { overrides.append("precision=\(precision)") }
            let doc = try PipelineDocument.load(file: file, overrides: overrides, lengthGiven: steps != nil)
            try doc.precision.checkAvailable()
            let dir = out ?? doc.output ?? "runs/\(doc.name)"
            let pipeline = try PipelineBuilder(registry: .standard).build(doc, outputDirectory: dir, communicator: comm)
            try initialize(pipeline)
            built = (doc, dir, pipeline)
        } catch {
            failure = error
        }
        if try ranksFailed(comm, failure) {
            mpi?.finalize()
            throw ExitCode.failure
        }
        let (doc, dir, pipeline) = built!
        do {
            if comm.isLeader { printWarnings(pipeline.warnings) }
            var options = Runner.Options(runDirectory: dir)
            options.resume = resume
            options.stepsOverride = steps
            options.timeLimit = try parseTimeLimit(timeLimit)
            options.scheduler = SchedulerKind(rawValue: scheduler)!
            if tensorboard && comm.isLeader { options.observers.append(try TensorBoardScalars(runDirectory: dir)) }
            // Sinks and metrics run on rank 0 alone while the others wait: give it their cores.
            let local = MPIEnvironment.localSize ?? 1
            if comm.size > 1 && local > 1 {
                let threads = min(Runtime.threads * local, ProcessInfo.processInfo.activeProcessorCount)
                if threads > Runtime.threads { options.sidePassThreads = threads }
            }
            if comm.size > 1 && comm.isLeader {
                let side = options.sidePassThreads.map { "; metrics and sinks on rank 0 with \($0) threads while the others wait" } ?? ""
                FileHandle.standardError.write(Data("data-parallel on \(comm.size) ranks: each trains on 1/\(comm.size) of every batch; batch norm \(doc.distributed.syncBatchNorm ? "synchronized" : "local"); gradient buckets of \(doc.distributed.bucketKiB) KiB\(side)\n".utf8))
            }
            let runner = Runner(pipeline: pipeline, options: options, logger: logger)
            if profile { RunProfile.start() }
            let summary = try runner.run()
            if comm.size > 1 { reportCollectives(comm) }
            mpi?.finalize()
            guard comm.isLeader else {
                if summary.interrupted { throw ExitCode(130) }
                return
            }
            if profile {
                let p = try RunProfile.finish(runDirectory: dir, pipelineName: pipeline.document.name)
                print(p.text)
                print("profile: \(p.tablePath); trace (\(p.events) events): \(p.tracePath)")
            }
            let reportPath = try RunReport.write(runDirectory: dir)
            let finals = summary.finalScalars.sorted { $0.key < $1.key }.map { "\($0.key)=\(String(format: "%.4g", $0.value))" }
            let limit = summary.timeLimitReached ? " at the time limit (\(timeLimit ?? ""))" : ""
            print("\(summary.interrupted || summary.timeLimitReached ? "stopped" : "finished") at step \(summary.lastStep)/\(summary.steps)\(limit) in \(String(format: "%.1f", summary.seconds)) s; run directory \(dir)")
            if !finals.isEmpty { print("final: " + finals.joined(separator: " ")) }
            print("report: \(reportPath)")
            if summary.timeLimitReached {
                print("continue with: ganflow run \(file) --out \(dir) --resume (with a longer --time-limit, or none)")
            }
            if summary.interrupted {
                print("resume with: ganflow run \(file) --out \(dir) --resume")
                throw ExitCode(130)
            }
        } catch let e as ExitCode {
            throw e
        } catch {
            if let mpi {
                // A rank failing alone would leave the others waiting in a collective: end the job.
                _ = report(error, rank: comm.rank)
                mpi.abort()
            }
            throw report(error)
        }
    }

    /// Whether any rank failed to load or build the pipeline. The error is printed once: by rank
    /// 0 when it failed, otherwise by each failing rank, named.
    func ranksFailed(_ comm: any Communicator, _ failure: Error?) throws -> Bool {
        let failed = failure == nil ? 0.0 : 1
        var flags = [failed, comm.isLeader ? failed : 0]
        try comm.allreduce(&flags, .max, operation: "start-up check")
        guard flags[0] > 0 else { return false }
        if let failure, comm.isLeader || flags[1] == 0 {
            _ = report(failure, rank: comm.isLeader ? nil : comm.rank)
        }
        return true
    }

    /// Prints, per rank, what the gradient allreduces cost (GANFLOW_MPI_STATS=1 for every rank).
    func reportCollectives(_ comm: any Communicator) {
        guard comm.isLeader || ProcessInfo.processInfo.environment["GANFLOW_MPI_STATS"] == "1" else { return }
        for (label, e) in CollectiveStatistics.shared.snapshot where e.steps > 0 {
            let n = Double(e.steps)
            let line = String(format: "rank %d %@: %d updates, %.2f MiB in %d bucket(s) per update, backward %.1f ms, exposed allreduce wait %.1f ms per update",
                              comm.rank, label, e.steps, Double(e.bytes) / 1_048_576, e.buckets,
                              e.backwardSeconds / n * 1000, e.exposedWaitSeconds / n * 1000)
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    /// Loads the `--init-from` files into their model stages.
    func initialize(_ pipeline: Pipeline) throws {
        for item in initFrom {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            let (id, file) = (parts[0], parts[1])
            guard let node = pipeline.nodes[id] else {
                throw PipelineErrors([PipelineError("init.stage", file: file, "--init-from: no stage '\(id)'",
                                                    suggestion: didYouMean(id, among: pipeline.order))])
            }
            guard let model = node.stage as? any ModelStage else {
                throw PipelineErrors([PipelineError("init.stage", file: file, "--init-from: stage '\(id)' (\(node.config.typeName)) is not a model")])
            }
            do {
                try model.loadStateDict(try SafeTensorsArchive(contentsOf: file))
            } catch let p as StageProblem {
                throw PipelineErrors([PipelineError("init.mismatch", file: file, "--init-from \(id): \(p.message)")])
            }
        }
    }
}

/// `--time-limit` (of run and compare) parsed; a malformed one is reported and fails with status 1.
func parseTimeLimit(_ text: String?) throws -> TimeLimit? {
    do {
        return try text.map { try TimeLimit(parsing: $0) }
    } catch {
        throw report(error)
    }
}

extension RunCommand: RanksWorkTogether {
    var usesEveryRank: Bool { true }
}
