import Glibc

/// A file in the IDX format of MNIST and Fashion-MNIST, plain or gzip-compressed, read record by record.
///
/// Only unsigned-byte files are supported: images (magic `0x00000803`, dimensions `[N, H, W]`) and labels
/// (magic `0x00000801`, `[N]`). Reading never holds more than the records asked for, so files larger than
/// memory can be streamed with `records(_:)`; `IDXFile.loadImages` and `loadLabels` read everything.
///
/// The data must hold exactly the records the header declares. A plain file's size is checked when it is
/// opened; a compressed file is checked as it is read (zlib cannot know the uncompressed size before),
/// and `validate()` reads it through once to check up front.
public final class IDXFile {
    /// What the file holds.
    public enum Kind: Equatable, Sendable {
        /// Gray images of `height` x `width` bytes (magic `0x00000803`).
        case images(height: Int, width: Int)
        /// One byte per record (magic `0x00000801`).
        case labels
    }

    public let path: String
    public let kind: Kind
    /// Number of records the header declares.
    public let count: Int
    /// Bytes in one record: `height * width` for images, 1 for labels.
    public let recordSize: Int
    /// Bytes before the first record.
    public let headerSize: Int

    private let file: GzipFile

    /// Opens `path` and checks its header (and, for a plain file, its size).
    public init(path: String) throws {
        self.path = path
        let opened = try GzipFile(path: path)
        file = opened
        var word = [UInt8](repeating: 0, count: 4)
        func readWord(_ what: String) throws -> Int {
            let (n, problem) = word.withUnsafeMutableBytes { opened.read(into: $0.baseAddress!, count: 4) }
            guard n == 4 else {
                throw ImageIOError(path: path, "file ends inside the header (\(what))" + (problem.map { ": \($0)" } ?? ""))
            }
            return Int(word[0]) << 24 | Int(word[1]) << 16 | Int(word[2]) << 8 | Int(word[3])
        }
        let magic = try readWord("magic number")
        switch magic {
        case 0x0000_0803:
            let n = try readWord("record count")
            let h = try readWord("height")
            let w = try readWord("width")
            guard h > 0, w > 0 else {
                throw ImageIOError(path: path, "image dimensions \(h)x\(w) in the header must be positive")
            }
            let (size, sizeOverflow) = h.multipliedReportingOverflow(by: w)
            let (_, totalOverflow) = n.multipliedReportingOverflow(by: size)
            guard !sizeOverflow, !totalOverflow else {
                throw ImageIOError(path: path, "the header declares \(n) images of \(h)x\(w) bytes, more than any file can hold")
            }
            kind = .images(height: h, width: w)
            count = n
            recordSize = size
            headerSize = 16
        case 0x0000_0801:
            count = try readWord("record count")
            kind = .labels
            recordSize = 1
            headerSize = 8
        default:
            throw ImageIOError(path: path, "magic number \(hex(magic)) is neither an IDX image file (0x00000803) nor a label file (0x00000801)")
        }
        if opened.isPlain {
            var info = stat()
            guard stat(path, &info) == 0 else {
                throw ImageIOError(path: path, "cannot stat: \(String(cString: strerror(errno)))")
            }
            let actual = Int(info.st_size) - headerSize
            if actual != count * recordSize {
                throw sizeMismatch(dataBytes: actual, problem: nil)
            }
        }
    }

    /// The shape of one record: `[height, width]` for images, `[]` for labels.
    public var recordShape: [Int] {
        switch kind {
        case .images(let h, let w): [h, w]
        case .labels: []
        }
    }

    /// Reads records `range` (bytes, record after record). Reading ranges in increasing order is
    /// fastest for compressed files; going back rewinds and inflates again from the start.
    public func records(_ range: Range<Int>) throws -> [UInt8] {
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw ImageIOError(path: path, "records \(range.lowerBound)..<\(range.upperBound) are outside the file's \(count) records")
        }
        let start = headerSize + range.lowerBound * recordSize
        if file.offset != start { try file.seek(to: start) }
        let wanted = range.count * recordSize
        var out: [UInt8]
        var n = 0
        if file.isPlain {
            // The size was checked against the header when the file was opened.
            out = [UInt8](repeating: 0, count: wanted)
            n = out.withUnsafeMutableBytes { file.read(into: $0.baseAddress!, count: $0.count) }.read
        } else {
            // A compressed file's header can declare far more data than the file holds: grow the
            // array as data arrives instead of trusting the header with the allocation.
            out = []
            var chunk = [UInt8](repeating: 0, count: min(wanted, 1 << 24))
            while n < wanted {
                let k = min(chunk.count, wanted - n)
                let got = chunk.withUnsafeMutableBytes { file.read(into: $0.baseAddress!, count: k) }.read
                out.append(contentsOf: chunk[0..<got])
                n += got
                if got < k { break }
            }
        }
        if n < wanted {
            // zlib defers a forward seek to the next read, so where the data really ended is only known
            // by reading from the start; this is the error path, so pay for it.
            let (total, problem) = try measureData()
            throw sizeMismatch(dataBytes: total, problem: problem)
        }
        return out
    }

    /// Reads the file through to its end, checking that it holds exactly the declared records.
    public func validate() throws {
        let (total, problem) = try measureData()
        if problem != nil || total != count * recordSize { throw sizeMismatch(dataBytes: total, problem: problem) }
    }

    /// The number of data bytes after the header, and zlib's complaint if the data ended early.
    private func measureData() throws -> (Int, String?) {
        try file.seek(to: headerSize)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var total = 0
        while true {
            let (n, problem) = buffer.withUnsafeMutableBytes { file.read(into: $0.baseAddress!, count: $0.count) }
            total += n
            if problem != nil || n < buffer.count { return (total, problem) }
        }
    }

    /// Reads every record and checks that nothing follows the last one.
    public func readAll() throws -> [UInt8] {
        let data = try records(0..<count)
        var extra: UInt8 = 0
        let (n, problem) = withUnsafeMutableBytes(of: &extra) { file.read(into: $0.baseAddress!, count: 1) }
        if n > 0 || problem != nil {
            let (total, problem) = try measureData()
            throw sizeMismatch(dataBytes: total, problem: problem)
        }
        return data
    }

    /// Closes the file early; otherwise it closes when the reader is released.
    public func close() { file.close() }

    private func sizeMismatch(dataBytes: Int, problem: String?) -> ImageIOError {
        let expected = count * recordSize
        let what: String
        switch kind {
        case .images(let h, let w): what = "\(count) images of \(h)x\(w) bytes"
        case .labels: what = "\(count) labels of 1 byte"
        }
        let cause = problem.map { " (\($0))" } ?? ""
        if dataBytes < expected {
            let record = dataBytes / recordSize
            let got = dataBytes % recordSize
            return ImageIOError(path: path,
                "data ends in record \(record) of \(count)\(cause): the header declares \(what) (\(expected) bytes), the file holds \(dataBytes)"
                + (got > 0 ? "; record \(record) has \(got) of \(recordSize) bytes" : ""))
        }
        return ImageIOError(path: path,
            "\(dataBytes - expected) bytes follow the last record\(cause): the header declares \(what) (\(expected) bytes), the file holds \(dataBytes)")
    }
}

/// Images and labels read from a pair of IDX files.
public struct IDXDataset: Sendable {
    /// Images, `count * height * width` bytes, record after record.
    public var images: [UInt8]
    /// One label per image.
    public var labels: [UInt8]
    public var height: Int
    public var width: Int
    public var count: Int { labels.count }
}

extension IDXFile {
    /// Reads a whole image file; its `kind` must be `.images`.
    public static func loadImages(_ path: String) throws -> (images: [UInt8], count: Int, height: Int, width: Int) {
        let file = try IDXFile(path: path)
        guard case .images(let h, let w) = file.kind else {
            throw ImageIOError(path: path, "expected an IDX image file (magic 0x00000803), found a label file")
        }
        return (try file.readAll(), file.count, h, w)
    }

    /// Reads a whole label file; its `kind` must be `.labels`.
    public static func loadLabels(_ path: String) throws -> [UInt8] {
        let file = try IDXFile(path: path)
        guard file.kind == .labels else {
            throw ImageIOError(path: path, "expected an IDX label file (magic 0x00000801), found an image file")
        }
        return try file.readAll()
    }

    /// Reads an image file and its label file, which must hold the same number of records.
    public static func loadDataset(images imagesPath: String, labels labelsPath: String) throws -> IDXDataset {
        // Compare the headers first: a mismatch is found without reading either file.
        let imageFile = try IDXFile(path: imagesPath)
        let labelFile = try IDXFile(path: labelsPath)
        guard case .images(let h, let w) = imageFile.kind else {
            throw ImageIOError(path: imagesPath, "expected an IDX image file (magic 0x00000803), found a label file")
        }
        guard labelFile.kind == .labels else {
            throw ImageIOError(path: labelsPath, "expected an IDX label file (magic 0x00000801), found an image file")
        }
        guard imageFile.count == labelFile.count else {
            throw ImageIOError(path: labelsPath,
                "holds \(labelFile.count) labels but \(imagesPath) holds \(imageFile.count) images; expected one label per image")
        }
        return IDXDataset(images: try imageFile.readAll(), labels: try labelFile.readAll(), height: h, width: w)
    }
}

func hex(_ value: Int) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
