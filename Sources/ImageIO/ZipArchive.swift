import CZip
import Foundation

/// A ZIP archive read in place through libzip: entry names, and one entry's bytes at a time.
///
/// libzip checks each entry's CRC-32 as it is read, so a damaged entry is an error naming the
/// archive and the entry. One libzip handle serves all threads, one read at a time (reads are short
/// next to decoding an image).
public final class ZipArchive: @unchecked Sendable {
    /// One file in the archive.
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var index: UInt64
        public var size: Int
    }

    /// The largest entry read (bytes): a ZIP's declared sizes are not trusted with an allocation.
    public static let entryLimit = 512 << 20

    public let path: String
    /// Files (not folders), in the archive's order.
    public let entries: [Entry]
    private let handle: OpaquePointer
    private let lock = NSLock()

    /// Whether the file at `path` starts as a ZIP archive does.
    public static func isArchive(_ path: String) -> Bool {
        guard let h = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? h.close() }
        let head = [UInt8]((try? h.read(upToCount: 4)) ?? Data())
        return head == [0x50, 0x4B, 0x03, 0x04] || head == [0x50, 0x4B, 0x05, 0x06]
    }

    public init(path: String) throws {
        self.path = path
        var code: Int32 = 0
        guard let handle = zip_open(path, ZIP_RDONLY, &code) else {
            var error = zip_error_t()
            zip_error_init_with_code(&error, code)
            defer { zip_error_fini(&error) }
            // isArchive saw a ZIP's first bytes: without its central directory (at the end) the
            // file was cut short, as an interrupted download or copy leaves it.
            let cut = code == ZIP_ER_NOZIP ? " (it starts as one, so its end, the central directory, is missing: a truncated file?)" : ""
            throw ImageIOError(path: path, "cannot open ZIP archive: \(String(cString: zip_error_strerror(&error)))\(cut)")
        }
        self.handle = handle
        var entries = [Entry]()
        let count = zip_get_num_entries(handle, 0)
        for i in 0..<UInt64(max(count, 0)) {
            var stat = zip_stat_t()
            guard zip_stat_index(handle, i, 0, &stat) == 0, let name = stat.name.map({ String(cString: $0) }) else { continue }
            if name.hasSuffix("/") { continue }
            entries.append(Entry(name: name, index: i, size: Int(clamping: stat.size)))
        }
        self.entries = entries
    }

    deinit { zip_discard(handle) }

    /// The bytes of `entry`.
    ///
    /// - Throws: `ImageIOError` naming the archive and the entry when it is too large, damaged (a
    ///   CRC mismatch, a bad compressed stream) or shorter than its header says.
    public func read(_ entry: Entry) throws -> [UInt8] {
        guard entry.size <= ZipArchive.entryLimit else {
            throw ImageIOError(path: path, "entry '\(entry.name)' declares \(entry.size) bytes, more than the \(ZipArchive.entryLimit >> 20) MiB read from one entry")
        }
        lock.lock()
        defer { lock.unlock() }
        guard let file = zip_fopen_index(handle, entry.index, 0) else {
            throw ImageIOError(path: path, "entry '\(entry.name)': \(String(cString: zip_strerror(handle)))")
        }
        defer { zip_fclose(file) }
        var bytes = [UInt8](repeating: 0, count: entry.size)
        var done = 0
        while true {
            // Ask for one byte more than declared: reaching the end is what makes libzip check the CRC.
            var extra: UInt8 = 0
            let n: Int64 = done < entry.size
                ? bytes.withUnsafeMutableBytes { zip_fread(file, $0.baseAddress! + done, UInt64(entry.size - done)) }
                : zip_fread(file, &extra, 1)
            if n < 0 { throw ImageIOError(path: path, "entry '\(entry.name)': \(String(cString: zip_file_strerror(file)))") }
            if n == 0 { break }
            if done >= entry.size { throw ImageIOError(path: path, "entry '\(entry.name)' holds more bytes than its header declares") }
            done += Int(n)
        }
        guard done == entry.size else {
            throw ImageIOError(path: path, "entry '\(entry.name)' holds \(done) bytes, its header declares \(entry.size)")
        }
        return bytes
    }
}
