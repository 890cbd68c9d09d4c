import ArgumentParser
import Foundation
import PipelineGraph
import PipelineStages

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check pipelines without running them: every problem in every file, at once.")

    @Argument(help: "Pipeline files.")
    var files: [String]

    @Option(name: .customLong("set"), help: "Override a value, as stageId.key=value (repeatable).")
    var assignments: [String] = []

    func run() throws {
        var failed = false
        for file in files {
            // `ganflow validate pipelines/*.json` also names the schema the pipelines point to.
            if file.hasSuffix(".schema.json") {
                print("\(file): skipped (a JSON Schema, not a pipeline)")
                continue
            }
            do {
                let doc = try PipelineDocument.load(file: file, overrides: assignments)
                let p = try PipelineBuilder(registry: .standard).build(doc, outputDirectory: FileManager.default.temporaryDirectory.path)
                printWarnings(p.warnings)
                print("\(file): ok (\(p.order.count) stages)")
            } catch {
                _ = report(error)
                failed = true
            }
        }
        if failed { throw ExitCode.failure }
    }
}

struct GraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph", abstract: "Print a pipeline's DAG as Graphviz DOT or Mermaid.")

    enum Format: String, ExpressibleByArgument, CaseIterable { case dot, mermaid }

    @Argument(help: "Pipeline file.")
    var file: String

    @Option(help: "Output format: dot or mermaid.")
    var format: Format = .dot

    @Option(name: .customLong("set"), help: "Override a value, as stageId.key=value (repeatable).")
    var assignments: [String] = []

    func run() throws {
        do {
            let doc = try PipelineDocument.load(file: file, overrides: assignments)
            let p = try PipelineBuilder(registry: .standard).build(doc, outputDirectory: FileManager.default.temporaryDirectory.path)
            print(format == .dot ? Describe.dot(p) : Describe.mermaid(p), terminator: "")
        } catch {
            throw report(error)
        }
    }
}

struct StagesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stages", abstract: "List every stage type with its ports, configuration keys and defaults.")

    func run() throws { print(Describe.stageList(.standard), terminator: "") }
}

struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema", abstract: "Print the JSON Schema of pipeline files (name it in \"$schema\" for editor completion).")

    func run() throws { print(Describe.jsonSchema(.standard).serialized()) }
}
