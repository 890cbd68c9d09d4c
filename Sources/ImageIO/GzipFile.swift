import CZlib
import Glibc

/// A file read through zlib's `gz*` functions: gzip-compressed or plain (zlib reads those as they are).
///
/// zlib's quirk that decides the error handling here: on a truncated `.gz`, `gzread` returns the data
/// it could inflate rather than -1, and only `gzerror` says "unexpected end of file". So every short
/// read asks `gzerror` for the reason, and callers also check sizes against their headers.
final class GzipFile {
    let path: String
    private var handle: gzFile?

    init(path: String) throws {
        self.path = path
        guard let h = gzopen(path, "rb") else {
            throw ImageIOError(path: path, "cannot open: \(String(cString: strerror(errno)))")
        }
        handle = h
        // Larger than the 8 KiB default: fewer, bigger inflate calls for sequential reads.
        gzbuffer(h, 1 << 17)
    }

    deinit { close() }

    func close() {
        if let h = handle { gzclose(h) }
        handle = nil
    }

    /// Whether the file is read as it is (not gzip-compressed).
    var isPlain: Bool { gzdirect(handle) != 0 }

    /// Reads up to `count` bytes into `buffer`; returns how many were read (fewer only at the end of
    /// the data) and zlib's complaint, if any, about why it stopped.
    func read(into buffer: UnsafeMutableRawPointer, count: Int) -> (read: Int, problem: String?) {
        var done = 0
        while done < count {
            // gzread takes an unsigned int count; stay well inside it.
            let chunk = UInt32(min(count - done, 1 << 30))
            let n = gzread(handle, buffer + done, chunk)
            if n < 0 { return (done, errorText() ?? "read error") }
            if n == 0 { break }
            done += Int(n)
        }
        return (done, done < count ? errorText() : nil)
    }

    /// Moves to byte `offset` of the uncompressed data (emulated by zlib for compressed files:
    /// forward by inflating, backward by rewinding).
    func seek(to offset: Int) throws {
        if gzseek(handle, offset, SEEK_SET) < 0 {
            throw ImageIOError(path: path, "cannot seek to byte \(offset): \(errorText() ?? "seek error")")
        }
    }

    /// Byte offset in the uncompressed data.
    var offset: Int { gztell(handle) }

    private func errorText() -> String? {
        var code: Int32 = 0
        guard let text = gzerror(handle, &code), code != Z_OK else { return nil }
        if code == Z_ERRNO { return String(cString: strerror(errno)) }
        // zlib prefixes its message with the path it was opened with; the caller adds the path itself.
        let message = String(cString: text)
        return message.hasPrefix(path + ": ") ? String(message.dropFirst(path.count + 2)) : message
    }
}
