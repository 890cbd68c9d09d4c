#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes files so that a reader sees either the old contents or the complete new ones.
///
/// The bytes go to a temporary file in the target's directory, which is flushed to disk, renamed
/// over the target and followed by a flush of the directory, so a crash (or a full disk) midway
/// through a checkpoint never leaves a truncated file behind.
public enum AtomicFile {
    /// Streams the new contents through `body`, then replaces `path` with them.
    ///
    /// If `body` or any file operation throws, the temporary file is removed and `path` is left
    /// as it was.
    public static func write(to path: String, _ body: (inout Writer) throws -> Void) throws {
        let (directory, base) = split(path)
        var temporaryPath = ""
        var fd: Int32 = -1
        for attempt in 0..<100 {
            temporaryPath = directory + "/." + base + ".tmp-\(getpid())-\(attempt)-\(UInt32.random(in: .min ... .max))"
            fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw FileError(path: path, operation: "create a temporary file", errno: errno) }
        let temporary = temporaryPath
        inProgress.withLock { _ = $0.insert(temporary) }
        var closed = false
        var renamed = false
        defer {
            if !closed { close(fd) }
            if !renamed { unlink(temporaryPath) }
            inProgress.withLock { _ = $0.remove(temporary) }
        }
        var writer = Writer(fd: fd, path: path)
        try body(&writer)
        guard fsync(fd) == 0 else { throw FileError(path: path, operation: "flush", errno: errno) }
        closed = true
        guard close(fd) == 0 else { throw FileError(path: path, operation: "close", errno: errno) }
        guard rename(temporaryPath, path) == 0 else { throw FileError(path: path, operation: "replace", errno: errno) }
        renamed = true
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dirFD >= 0 else { throw FileError(path: path, operation: "open the directory to flush", errno: errno) }
        defer { close(dirFD) }
        guard fsync(dirFD) == 0 else { throw FileError(path: path, operation: "flush the directory", errno: errno) }
    }

    /// The temporary files being written now.
    private static let inProgress = Locked<Set<String>>([])

    /// Removes the temporary files of the writes under way, for a process about to exit without
    /// unwinding (a second Ctrl-C): their targets stay as they were.
    public static func removeTemporariesInProgress() {
        inProgress.withLock { paths in
            for path in paths { unlink(path) }
        }
    }

    /// Replaces `path` with `bytes`.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try write(to: path) { writer in
            try bytes.withUnsafeBytes { try writer.write($0) }
        }
    }

    /// Removes the temporary files in `directory` that writers killed midway left behind, and
    /// returns their paths.
    ///
    /// A SIGKILL (or a power cut) during `write` leaves `.<name>.tmp-<pid>-…` behind; the target
    /// itself is intact, but a run killed often would fill its disk with these. Only files whose
    /// writing process no longer exists are removed, so a live writer in the same directory is safe.
    @discardableResult
    public static func removeAbandonedTemporaries(in directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            names.append(name)
        }
        closedir(dir)
        var removed: [String] = []
        for name in names where name.hasPrefix(".") {
            guard let marker = name.firstRange(of: ".tmp-") else { continue }
            let digits = name[marker.upperBound...].prefix { $0.isNumber }
            guard let pid = Int32(digits), pid > 0 else { continue }
            guard kill(pid, 0) != 0 && errno == ESRCH else { continue }
            let path = directory + "/" + name
            if unlink(path) == 0 { removed.append(path) }
        }
        return removed
    }

    /// Appends bytes to the temporary file of an `AtomicFile.write`.
    public struct Writer: ~Copyable {
        let fd: Int32
        let path: String

        /// Writes all of `bytes`, retrying short writes and interruptions.
        public mutating func write(_ bytes: UnsafeRawBufferPointer) throws {
            guard var p = bytes.baseAddress else { return }
            var remaining = bytes.count
            while remaining > 0 {
                let n = systemWrite(fd, p, remaining)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw FileError(path: path, operation: "write", errno: errno)
                }
                p += n
                remaining -= n
            }
        }
    }

    /// The directory (or ".") and the last component of `path`.
    static func split(_ path: String) -> (directory: String, base: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = String(path[..<slash])
        return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
    }
}

@inline(__always)
private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(fd, p, n)
    #else
    Darwin.write(fd, p, n)
    #endif
}

/// A failed file operation, naming the file and the system's reason.
public struct FileError: Error, CustomStringConvertible, Equatable, Sendable {
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    init(path: String, operation: String, errno code: Int32) {
        self.init(path: path, message: "cannot \(operation): \(String(cString: strerror(code)))")
    }

    public var description: String { "\(path): \(message)" }
}
