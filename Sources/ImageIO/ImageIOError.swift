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
