import Foundation
import Testing
@testable import ImageIO

/// Paths of committed fixtures and scratch folders for the ImageIO tests.
enum Fixtures {
    static let root: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path

    static func path(_ relative: String) -> String { root + "/" + relative }

    /// Debian's dataset-fashion-mnist, when installed.
    static let fashionMNIST = "/usr/share/datasets/fashion-mnist"
    static var hasFashionMNIST: Bool {
        FileManager.default.fileExists(atPath: fashionMNIST + "/train-images-idx3-ubyte.gz")
    }
}

/// A fresh folder under the system temporary directory, removed when released.
final class ScratchFolder {
    let path: String

    init() throws {
        var template = Array((NSTemporaryDirectory() + "/imageio-test-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw ImageIOError(path: "mkdtemp", "failed") }
        path = String(cString: made)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }
}

/// The error `body` throws, as `ImageIOError`, or nil (recorded as a failure) when it throws none.
func imageIOError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> ImageIOError? {
    do {
        try body()
        Issue.record("expected an ImageIOError", sourceLocation: sourceLocation)
    } catch let error as ImageIOError {
        return error
    } catch {
        Issue.record("expected an ImageIOError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
