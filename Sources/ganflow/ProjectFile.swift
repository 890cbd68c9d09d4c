import Foundation

/// A file shipped in the project (the default classifier, the benchmark's PyTorch reference), found
/// from where `ganflow` is rather than from the current directory.
///
/// Looked for in the package `ganflow` was built from (its sources' location, known when compiled)
/// and above the executable (a clone's `.build/debug/ganflow` or `.build/release/ganflow` sits three
/// levels below the root), so a command works from any directory.
enum ProjectFile {
    /// The candidates for `relative`, in the order they are tried.
    static func candidates(_ relative: String) -> [String] {
        // Sources/ganflow/ProjectFile.swift -> the package root.
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var roots = [package.path]
        let executable = URL(fileURLWithPath: Bundle.main.executablePath ?? CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = executable.deletingLastPathComponent()
        for _ in 0..<4 {
            roots.append(dir.path)
            dir = dir.deletingLastPathComponent()
        }
        var seen = Set<String>()
        return roots.map { ($0 as NSString).appendingPathComponent(relative) }.filter { seen.insert($0).inserted }
    }

    /// The path of `relative` in the project, or an error naming what is missing and where it was
    /// looked for, and the option that gives it.
    static func locate(_ relative: String, what: String, option: String) throws -> String {
        let paths = candidates(relative)
        if let found = paths.first(where: { FileManager.default.isReadableFile(atPath: $0) }) { return found }
        throw ValidationErrorText("\(what) (\(relative)) is not in the package ganflow was built from nor above the executable; looked at "
                                 + paths.joined(separator: ", ") + "; give \(option) FILE")
    }
}
