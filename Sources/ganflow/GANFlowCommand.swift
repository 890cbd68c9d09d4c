import ArgumentParser
import Foundation
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
