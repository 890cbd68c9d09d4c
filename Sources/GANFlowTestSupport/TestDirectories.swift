import Foundation
import TensorRuntime

/// Scratch directories for tests, all under one folder per test process that is removed when
/// the process exits, so a test that forgets to clean up (or fails half way) leaves nothing behind.
public enum TestDirectories {
    private static let root = Locked<String?>(nil)

    /// A fresh empty directory whose name starts with `label`.
    public static func make(_ label: String) -> String {
        let parent = root.withLock { path -> String in
            if let path { return path }
            let made = NSTemporaryDirectory() + "ganflow-tests-\(getpid())"
            try? FileManager.default.removeItem(atPath: made)
            atexit { TestDirectories.removeAll() }
            path = made
            return made
        }
        let dir = parent + "/\(label)-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func removeAll() {
        if let path = root.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
    }
}
