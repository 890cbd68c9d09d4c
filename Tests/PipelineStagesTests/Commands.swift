import Foundation
import Testing

/// Running `ganflow` and the interop peers (Python, mpirun) as a user would, from tests.

/// `ganflow` beside the test bundle (swift build --build-tests builds it too).
let ganflowExecutable: String = {
    let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for dir in [bundleDirectory.path, bundleDirectory.deletingLastPathComponent().path, repositoryRoot + "/.build/debug"] {
        let candidate = dir + "/ganflow"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return repositoryRoot + "/.build/debug/ganflow"
}()

/// Whether the tests run in CI (`CI=true`), where a test that cannot run must fail, not skip.
let runningInCI = ["true", "1"].contains(ProcessInfo.processInfo.environment["CI"]?.lowercased() ?? "")

/// Runs a command with one kernel thread and `environment` added; returns its exit status and its
/// merged output.
func execute(_ executable: String, _ arguments: [String], directory: String? = nil,
             environment: [String: String] = [:]) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
    var env = ProcessInfo.processInfo.environment
    env["OMP_NUM_THREADS"] = "1"
    p.environment = env.merging(environment) { $1 }
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// The Python of the interop checks (PyTorch, TensorBoard): `GANFLOW_PYTHON`, which `make test`
/// sets to the venv it builds (`Scripts/dev-venv.sh`, in ~/.cache/ganflow/venv), else that venv if it exists.
let interopPython: String? = {
    let candidates = [ProcessInfo.processInfo.environment["GANFLOW_PYTHON"], NSHomeDirectory() + "/.cache/ganflow/venv/bin/python"]
    return candidates.compactMap { $0 }.first { FileManager.default.isExecutableFile(atPath: $0) }
}()

/// Why a test needing the interop Python cannot run, for its trait and its failure in CI.
let interopPythonMissing = "GANFLOW_PYTHON is not set and ~/.cache/ganflow/venv is missing: run `make test-interop` (it builds the venv with Scripts/dev-venv.sh)"

/// The interop Python, or a failure in CI when it is missing (elsewhere the test is disabled by
/// `.enabled(if: interopPython != nil || runningInCI)`).
func requireInteropPython(sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    try #require(interopPython, Comment(rawValue: interopPythonMissing), sourceLocation: sourceLocation)
}
