import Foundation
import ImageIO

/// Files a command numbers in its output folder (`sample-00000.png`, `frame-0000.png`).
struct NumberedFiles {
    /// What the file names start with.
    var prefix: String
    /// What the files are, in the plural.
    var plural: String
    /// What leftovers of an earlier call would do.
    var harm: String

    static let sample = NumberedFiles(prefix: "sample-", plural: "samples", harm: "which a score of the folder would mix in")
    static let frame = NumberedFiles(prefix: "frame-", plural: "frames", harm: "which would be taken for this walk's")

    /// Refuses `folder` when it holds files numbered `count` or above, left by an earlier call:
    /// this one would not overwrite them.
    func refuseLeftovers(in folder: String, writing count: Int) throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        let left = names.filter { name in
            name.hasPrefix(prefix) && name.hasSuffix(".png") && (Int(name.dropFirst(prefix.count).dropLast(4)) ?? -1) >= count
        }.sorted()
        guard let first = left.first, let last = left.last else { return }
        let what = left.count == 1 ? String(plural.dropLast()) : plural
        throw ImageIOError(path: folder, "holds \(left.count) \(what) from an earlier call beyond the \(count) this one writes "
            + "(\(left.count == 1 ? first : first + " to " + last)), \(harm): give another --out, or remove them")
    }
}
