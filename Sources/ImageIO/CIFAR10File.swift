import Glibc

/// A CIFAR-10 binary batch (`data_batch_1.bin` ... `test_batch.bin`), plain or gzip-compressed.
///
/// Each record is one label byte (0 to 9) followed by a 32x32 RGB image as 3072 bytes in CHW order
/// (1024 red, 1024 green, 1024 blue, rows top to bottom). The file must hold whole records only.
/// Records are read on demand with `records(_:)`, as for `IDXFile`.
public final class CIFAR10File {
    public static let imageSize = 3 * 32 * 32
    public static let recordSize = 1 + imageSize
    /// CIFAR-10's class names in label order.
    public static let classNames = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    public let path: String
    /// Number of records in the file.
    public let count: Int
    private let file: GzipFile

    /// Opens `path` and checks that it holds a whole, non-zero number of records (a compressed file is
    /// read through once to find its size).
    public init(path: String) throws {
        self.path = path
        let opened = try GzipFile(path: path)
        file = opened
        let size: Int
        if opened.isPlain {
            var info = stat()
            guard stat(path, &info) == 0 else {
                throw ImageIOError(path: path, "cannot stat: \(String(cString: strerror(errno)))")
            }
            size = Int(info.st_size)
        } else {
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            var total = 0
            while true {
                let (n, problem) = buffer.withUnsafeMutableBytes { opened.read(into: $0.baseAddress!, count: $0.count) }
                total += n
                if let problem { throw ImageIOError(path: path, "data ends after \(total) bytes (\(problem))") }
                if n < buffer.count { break }
            }
            size = total
            try opened.seek(to: 0)
        }
        let r = CIFAR10File.recordSize
        guard size > 0 else { throw ImageIOError(path: path, "file is empty: expected records of \(r) bytes (1 label + 3x32x32 image)") }
        guard size % r == 0 else {
            throw ImageIOError(path: path,
                "size \(size) bytes is not a whole number of \(r)-byte records (1 label + 3x32x32 image): record \(size / r) has \(size % r) of \(r) bytes")
        }
        count = size / r
    }

    /// Reads records `range`: images as `range.count * 3072` bytes (CHW, record after record) and labels.
    public func records(_ range: Range<Int>) throws -> (images: [UInt8], labels: [UInt8]) {
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw ImageIOError(path: path, "records \(range.lowerBound)..<\(range.upperBound) are outside the file's \(count) records")
        }
        let r = CIFAR10File.recordSize
        if file.offset != range.lowerBound * r { try file.seek(to: range.lowerBound * r) }
        var raw = [UInt8](repeating: 0, count: range.count * r)
        let (n, problem) = raw.withUnsafeMutableBytes { file.read(into: $0.baseAddress!, count: $0.count) }
        guard n == raw.count else {
            let record = range.lowerBound + n / r
            throw ImageIOError(path: path, "data ends in record \(record) of \(count)" + (problem.map { " (\($0))" } ?? ""))
        }
        var images = [UInt8]()
        images.reserveCapacity(range.count * CIFAR10File.imageSize)
        var labels = [UInt8]()
        labels.reserveCapacity(range.count)
        for i in 0..<range.count {
            let label = raw[i * r]
            guard label < 10 else {
                throw ImageIOError(path: path, "record \(range.lowerBound + i) has label \(label); CIFAR-10 labels are 0 to 9")
            }
            labels.append(label)
            images.append(contentsOf: raw[(i * r + 1)..<((i + 1) * r)])
        }
        return (images, labels)
    }

    /// Reads several batch files, in the order given, into one image array and label array.
    public static func load(_ paths: [String]) throws -> (images: [UInt8], labels: [UInt8]) {
        var images = [UInt8](), labels = [UInt8]()
        for path in paths {
            let file = try CIFAR10File(path: path)
            let part = try file.records(0..<file.count)
            images += part.images
            labels += part.labels
        }
        return (images, labels)
    }
}
