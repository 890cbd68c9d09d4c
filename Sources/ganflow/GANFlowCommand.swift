import ArgumentParser
import Foundation
import MPICollectives
import PipelineGraph
import PipelineStages
import TensorRuntime

@main
struct GANFlowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ganflow",
        abstract: "Train GANs and run style transfer as declarative data-flow pipelines.",
        discussion: """
            A pipeline is a JSON file of stages (datasets, noise, generators, discriminators, losses,
            optimizers, sinks, metrics) wired by name, and a schedule of what one step does.

              ganflow run pipelines/dcgan-fashion.json
              ganflow run pipelines/dcgan-fashion.json --set loss.type=loss.hinge --out runs/hinge
              ganflow validate pipelines/*.json
              ganflow sample runs/dcgan-fashion --count 64 --grid --out samples
              ganflow export runs/dcgan-fashion --stage G --out g.safetensors
              ganflow interpolate runs/dcgan-fashion --seeds 1,2,3 --slerp --out walk
              ganflow project runs/dcgan-fashion --image shirt.png --out projection
            """,
        subcommands: [RunCommand.self, ValidateCommand.self, GraphCommand.self, StagesCommand.self, SchemaCommand.self,
                      BenchCommand.self, ExportCommand.self, SampleCommand.self, InterpolateCommand.self, ProjectCommand.self,
                      ScoreCommand.self, ReportCommand.self, CompareCommand.self, AllreduceBenchCommand.self, DatasetCommand.self])

    /// As ArgumentParser's `main`, except that a usage error (an unknown flag, a malformed or
    /// missing value, a failed `validate()`) exits with status 1, as every other bad input does,
    /// rather than ArgumentParser's 64. Its message and the usage line are printed as before.
    static func main() {
        Runtime.fixAllocatorThreshold()
        do {
            var command = try parseAsRoot()
            guard onThisRank(command) else { return }
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(1)
            }
            exit(withError: error)
        }
    }
}

/// A command that `mpirun`'s ranks run together (data-parallel training, one variant per rank).
protocol RanksWorkTogether {
    /// Whether this invocation uses every rank; when false it runs on rank 0 alone.
    var usesEveryRank: Bool { get }
}

/// Whether `command` runs in this process. Under `mpirun -np N` (N > 1), a command that does
/// not use the ranks together (sampling, scoring, exporting, validating, benchmarks, comparing
/// finished runs...) runs on rank 0 only, with a note, so that N copies do not each write the
/// same files and share the cores; the other ranks exit with status 0 at once.
func onThisRank(_ command: ParsableCommand) -> Bool {
    guard let size = MPIEnvironment.launchedSize, size > 1,
          (command as? RanksWorkTogether)?.usesEveryRank != true else { return true }
    guard (MPIEnvironment.launchedRank ?? 0) == 0 else { return false }
    let name = type(of: command).configuration.commandName ?? "this command"
    let others = size == 2 ? "rank 1 has" : "ranks 1-\(size - 1) have"
    FileHandle.standardError.write(Data("note: ganflow \(name) runs in one process: it runs on rank 0 of mpirun's \(size), and \(others) nothing to do\n".utf8))
    return true
}

/// Prints pipeline problems the way compilers do, one per line, and fails.
func report(_ error: Error, rank: Int? = nil) -> ExitCode {
    var text: String
    switch error {
    case let e as PipelineErrors: text = e.description
    case let e as PipelineError: text = e.description
    default: text = "\(error)"
    }
    if let rank { text = "rank \(rank): " + text }
    FileHandle.standardError.write(Data(("error: " + text.replacingOccurrences(of: "\n", with: "\nerror: ") + "\n").utf8))
    return ExitCode.failure
}

func printWarnings(_ warnings: [PipelineError]) {
    for w in warnings { FileHandle.standardError.write(Data((w.description + "\n").utf8)) }
}
