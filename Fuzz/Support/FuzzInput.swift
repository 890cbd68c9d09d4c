#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The readers under test take paths, so each input is written to one scratch file per process,
/// on tmpfs when there is one: no disk traffic and no files left behind between inputs.
public enum FuzzInput {
    /// A path that this process reuses for every input.
    public static let path: String = {
        let directory = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        return "\(directory)/ganflow-fuzz-\(getpid())"
    }()

    /// Writes the input to `path` and returns the path; a failed write is a broken machine, not a finding.
    public static func write(_ data: UnsafePointer<UInt8>, _ size: Int) -> String {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        precondition(fd >= 0, "cannot create \(path)")
        var done = 0
        while done < size {
            let n = Glibc.write(fd, data + done, size - done)
            precondition(n > 0 || (n < 0 && errno == EINTR), "cannot write \(path)")
            if n > 0 { done += n }
        }
        close(fd)
        return path
    }

    /// The input as an array.
    public static func bytes(_ data: UnsafePointer<UInt8>, _ size: Int) -> [UInt8] {
        Array(UnsafeBufferPointer(start: data, count: size))
    }
}
