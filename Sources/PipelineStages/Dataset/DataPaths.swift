import Foundation
import PipelineGraph

/// Where a path in a pipeline's configuration points.
enum DataPaths {
    /// Resolves `path` as the documentation promises: an absolute path as it is; a relative one
    /// against the pipeline file's folder first, then against the working directory.
    ///
    /// - Throws: a `StageProblem` at `key` naming every place looked at, when none exists.
    static func resolve(_ path: String, key: String, context: BuildContext) throws -> String {
        let expanded = (path as NSString).expandingTildeInPath
        let fm = FileManager.default
        if expanded.hasPrefix("/") {
            guard fm.fileExists(atPath: expanded) else { throw StageProblem(key: key, "no such file or folder: \(expanded)") }
            return expanded
        }
        var candidates: [String] = []
        let folder = (context.pipelineFile as NSString).deletingLastPathComponent
        candidates.append(folder.isEmpty ? expanded : (folder as NSString).appendingPathComponent(expanded))
        let cwd = fm.currentDirectoryPath
        let fromCWD = (cwd as NSString).appendingPathComponent(expanded)
        if !candidates.contains(fromCWD) && !candidates.contains(expanded) { candidates.append(fromCWD) }
        for c in candidates where fm.fileExists(atPath: c) { return c }
        throw StageProblem(key: key, "no such file or folder: '\(path)' (looked for " + candidates.joined(separator: " and ") + ")")
    }

    static func isDirectory(_ path: String) -> Bool {
        var flag: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &flag) && flag.boolValue
    }
}
