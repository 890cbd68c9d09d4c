import ArgumentParser
import Foundation
import PipelineStages
import Reporting

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write report.html for a run directory: curves, sample grids, final values and the pipeline, in one file.",
        discussion: "`ganflow run` writes it at the end of every run; this rewrites it, e.g. for a run still going.")

    @Argument(help: "A run directory.")
    var directory: String

    func run() throws {
        do {
            print("wrote \(try RunReport.write(runDirectory: directory))")
        } catch {
            throw report(error)
        }
    }
}
