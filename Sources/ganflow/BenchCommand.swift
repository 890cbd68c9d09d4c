import ArgumentParser
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Time kernels and full training steps (see README).")
    func run() throws { print("bench: not wired yet") }
}
