/// A problem with an image or data file that a user can cause: missing, corrupt or inconsistent data.
///
/// The message names the file first, then what went wrong and, where it helps, what was expected:
/// `train-images-idx3-ubyte.gz: record 153 of 256 is incomplete (unexpected end of file): expected 784 bytes, got 312`.
public struct ImageIOError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file or folder the problem is in.
    public var path: String
    /// What went wrong, without the path.
    public var reason: String

    public init(path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }

    public var message: String { "\(path): \(reason)" }
    public var description: String { message }
}

extension ImageIOError {
    /// A folder or archive none of whose files could be read, with the reasons of the first few
    /// (`failures`: path and reason of each file that failed, in any order).
    public static func noReadableImages(in root: String, failures: [(path: String, reason: String)], shown: Int = 3) -> ImageIOError {
        guard !failures.isEmpty else { return ImageIOError(path: root, "no readable images") }
        let sorted = failures.sorted { $0.path < $1.path }
        let listed = sorted.prefix(shown).map { "\($0.path): \($0.reason)" }.joined(separator: "; ")
        let more = sorted.count > shown ? "; and \(sorted.count - shown) more" : ""
        return ImageIOError(path: root, "no readable images: all \(sorted.count) file\(sorted.count == 1 ? "" : "s") failed (\(listed)\(more))")
    }
}
