import Foundation
import Glibc
import TensorRuntime

/// A prepared dataset (`.gfd`): images decoded, oriented and resized once, packed as bytes and
/// memory-mapped on reading, with labels and the source file of every image.
///
/// Layout (little-endian), every offset checked against the file's size when it is opened:
///
///     0   8  magic "GFDATA01"
///     8   4  count (images)          12  4  channels
///     16  4  height                  20  4  width
///     24  4  classes (0: unlabelled) 28  4  reserved (0)
///     32  8  offset of the pixels (64): count x [channels, height, width] uint8, CHW
///     40  8  offset of the labels: count x uint32 (absent when unlabelled)
///     48  8  offset of the names: UTF-8 JSON {"classes": [...], "sources": [...]}
///     56  8  length of the names
///
/// The file ends exactly where the names end. Nothing in it depends on the time or the machine, so
/// preparing the same source twice gives the same bytes.
public final class PreparedDataset: @unchecked Sendable {
    public static let magic = Array("GFDATA01".utf8)
    static let headerSize = 64

    public let path: String
    public let count: Int
    /// `[C, H, W]` of every image.
    public let shape: [Int]
    public let classes: [String]
    /// Each image's label, or nil when the dataset has none.
    public let labels: [Int]?
    /// The file (or archive entry) each image came from, relative to the prepared source.
    public let sources: [String]
    /// The images' bytes, mapped from the file.
    public let pixels: UnsafeRawBufferPointer
    private let mapping: UnsafeMutableRawPointer
    private let mappedSize: Int

    /// Whether the file at `path` starts with a prepared dataset's magic (false when it cannot
    /// be read: opening it then says why).
    public static func hasMagic(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: magic.count)).map { Array($0) == magic } ?? false
    }

    /// Maps `path` and checks its header against its size.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ImageIOError(path: path, "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw ImageIOError(path: path, "cannot stat: \(String(cString: strerror(errno)))") }
        let size = Int(status.st_size)
        guard size >= PreparedDataset.headerSize else {
            throw ImageIOError(path: path, "not a prepared dataset: \(size) bytes, shorter than the \(PreparedDataset.headerSize)-byte header")
        }
        guard let map = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw ImageIOError(path: path, "cannot map: \(String(cString: strerror(errno)))")
        }
        mapping = map
        mappedSize = size
        let bytes = UnsafeRawBufferPointer(start: map, count: size)
        do {
            guard Array(bytes[0..<8]) == PreparedDataset.magic else {
                throw ImageIOError(path: path, "not a prepared dataset (expected the magic GFDATA01; make one with 'ganflow dataset prepare')")
            }
            func u32(_ at: Int) -> Int { Int(bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self).littleEndian) }
            func u64(_ at: Int) -> UInt64 { bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self).littleEndian }
            let (n, c, h, w, k) = (u32(8), u32(12), u32(16), u32(20), u32(24))
            guard n > 0, (1...4).contains(c), h > 0, w > 0, h <= 1 << 16, w <= 1 << 16 else {
                throw ImageIOError(path: path, "corrupt header: \(n) images of \(c)x\(h)x\(w)")
            }
            let pixelBytes = n * c * h * w
            let labelBytes = k > 0 ? 4 * n : 0
            let (pixelsAt, labelsAt, namesAt, namesLength) = (u64(32), u64(40), u64(48), u64(56))
            let expectedLabels = UInt64(PreparedDataset.headerSize + pixelBytes)
            let expectedNames = expectedLabels + UInt64(labelBytes)
            guard pixelsAt == UInt64(PreparedDataset.headerSize), labelsAt == expectedLabels, namesAt == expectedNames,
                  namesLength <= UInt64(Int.max) - namesAt else {
                throw ImageIOError(path: path, "corrupt header: section offsets do not follow \(n) images of \(c)x\(h)x\(w)")
            }
            let expectedSize = namesAt + namesLength
            guard expectedSize == UInt64(size) else {
                throw ImageIOError(path: path, "the header describes \(expectedSize) bytes (\(n) images of \(c)x\(h)x\(w)), the file holds \(size)\(UInt64(size) < expectedSize ? " (truncated?)" : "")")
            }
            let names = Data(bytes[Int(namesAt)..<size])
            guard let json = try? JSONSerialization.jsonObject(with: names) as? [String: Any],
                  let classes = json["classes"] as? [String], let sources = json["sources"] as? [String], sources.count == n,
                  classes.count == k else {
                throw ImageIOError(path: path, "corrupt names section: expected {\"classes\": [\(k) names], \"sources\": [\(n) names]}")
            }
            if k > 0 {
                var labels = [Int]()
                labels.reserveCapacity(n)
                for i in 0..<n {
                    let l = u32(Int(labelsAt) + 4 * i)
                    guard l < k else { throw ImageIOError(path: path, "image \(i) (\(sources[i])) has label \(l), but there are \(k) classes") }
                    labels.append(l)
                }
                self.labels = labels
            } else {
                labels = nil
            }
            count = n
            shape = [c, h, w]
            self.classes = classes
            self.sources = sources
            pixels = UnsafeRawBufferPointer(start: map + PreparedDataset.headerSize, count: pixelBytes)
        } catch {
            munmap(map, size)
            throw error
        }
    }

    deinit { munmap(mapping, mappedSize) }

    /// Writes a prepared dataset: `pixels` holds `sources.count` images of `shape` (uint8, CHW).
    public static func write(to path: String, shape: [Int], pixels: [UInt8], labels: [Int]?, classes: [String], sources: [String]) throws {
        precondition(shape.count == 3 && pixels.count == sources.count * shape.reduce(1, *))
        precondition(labels == nil || (labels!.count == sources.count && !classes.isEmpty))
        let names = try JSONSerialization.data(withJSONObject: ["classes": labels == nil ? [] : classes, "sources": sources],
                                               options: [.sortedKeys, .withoutEscapingSlashes])
        let n = sources.count
        let k = labels == nil ? 0 : classes.count
        var header = [UInt8]()
        func put32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { header += $0 } }
        func put64(_ v: Int) { withUnsafeBytes(of: UInt64(v).littleEndian) { header += $0 } }
        header += magic
        put32(n); put32(shape[0]); put32(shape[1]); put32(shape[2]); put32(k); put32(0)
        let labelsAt = headerSize + pixels.count
        let namesAt = labelsAt + (k > 0 ? 4 * n : 0)
        put64(headerSize); put64(labelsAt); put64(namesAt); put64(names.count)
        var labelBytes = [UInt8]()
        if let labels { for l in labels { withUnsafeBytes(of: UInt32(l).littleEndian) { labelBytes += $0 } } }
        do {
            try AtomicFile.write(to: path) { w in
                try header.withUnsafeBytes { try w.write($0) }
                try pixels.withUnsafeBytes { try w.write($0) }
                try labelBytes.withUnsafeBytes { try w.write($0) }
                try names.withUnsafeBytes { try w.write($0) }
            }
        } catch let e as FileError {
            throw ImageIOError(path: path, "\(e)")
        }
    }
}
