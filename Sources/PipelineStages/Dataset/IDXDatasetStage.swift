import Foundation
import ImageIO
import PipelineGraph
import TensorRuntime

/// Images (and optionally labels) from IDX files, plain or gzip: MNIST, Fashion-MNIST and the like.
///
///     "data": { "type": "dataset.idx", "images": "train-images-idx3-ubyte.gz",
///               "labels": "train-labels-idx1-ubyte.gz", "size": 32, "fit": "pad" }
///
/// Outputs `images` `[batch, C, H, W]` in [-1, 1] and, with `labels`, `labels` `[batch]`. Data up to
/// `streamAbove` megabytes is read whole when the stage is built (every problem found then);
/// larger files are read batch by batch from disk, so memory stays bounded by the prefetch queue.
public final class IDXDatasetStage: DatasetBacked, @unchecked Sendable {
    public static let typeName = "dataset.idx"
    public static let summary = "Images (and labels) from IDX files, plain or .gz; outputs 'images' in [-1, 1] and 'labels'."
    public static let lane = StageLane.data
    public static let configKeys: [ConfigKey] = [
        ConfigKey("images", .path, "The IDX image file (magic 0x00000803), plain or .gz."),
        ConfigKey("labels", .path, default: .null, "The IDX label file (magic 0x00000801); adds output 'labels'."),
        ConfigKey("streamAbove", .int(min: 0), default: .number(1024), "Megabytes of image data above which batches are read from disk instead of loading the file whole."),
    ] + DatasetCore.keys

    public let core: DatasetCore

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let imagesPath = try DataPaths.resolve(config.string("images"), key: "images", context: context)
        let labelsPath = try config.optionalString("labels").map { try DataPaths.resolve($0, key: "labels", context: context) }
        let source: ByteRecordSource
        do {
            let file = try IDXFile(path: imagesPath)
            guard case .images(let h, let w) = file.kind else {
                throw StageProblem(key: "images", "\(imagesPath): expected an IDX image file (magic 0x00000803), found a label file")
            }
            var labels: [UInt8]?
            if let labelsPath {
                let labelFile = try IDXFile(path: labelsPath)
                guard labelFile.kind == .labels else {
                    throw StageProblem(key: "labels", "\(labelsPath): expected an IDX label file (magic 0x00000801), found an image file")
                }
                guard labelFile.count == file.count else {
                    throw StageProblem(key: "labels", "\(labelsPath): holds \(labelFile.count) labels but \(imagesPath) holds \(file.count) images; expected one label per image")
                }
                labels = try labelFile.readAll()
            }
            let preprocessing = try ImagePreprocessing(config: config, fileChannels: 1)
            let storage: ByteRecordSource.Storage
            if file.count * h * w > config.int("streamAbove") << 20 {
                try file.validate()
                storage = .disk(IDXRecordReader(file))
            } else {
                storage = .memory(try file.readAll())
            }
            source = try ByteRecordSource(storage: storage, count: file.count, recordShape: [1, h, w], labels: labels?.map(Int.init),
                                          preprocessing: preprocessing)
        } catch let e as ImageIOError {
            throw StageProblem(key: e.path == labelsPath ? "labels" : "images", e.message)
        }
        if source.count == 0 { throw StageProblem(key: "images", "\(imagesPath): holds no images") }
        core = try DatasetCore(source: source, config: config, inputs: inputs, context: context)
    }
}

/// Reads IDX image records from disk, one contiguous run of indices at a time.
final class IDXRecordReader: RecordReader, @unchecked Sendable {
    // IDXFile keeps a read position: one reader at a time.
    private let lock = NSLock()
    private let file: IDXFile

    init(_ file: IDXFile) { self.file = file }

    func images(_ indices: [Int]) throws -> [UInt8] {
        try lock.withLock {
            try readRuns(indices, recordSize: file.recordSize) { try file.records($0) }
        }
    }
}

/// Reads the records `indices` (any order) by sorting them and reading each run of consecutive
/// indices once, front to back (the cheap direction for compressed files).
func readRuns(_ indices: [Int], recordSize: Int, read: (Range<Int>) throws -> [UInt8]) throws -> [UInt8] {
    var out = [UInt8](repeating: 0, count: indices.count * recordSize)
    let sorted = indices.enumerated().sorted { $0.element < $1.element }
    var i = 0
    while i < sorted.count {
        var j = i + 1
        while j < sorted.count && sorted[j].element <= sorted[j - 1].element + 1 { j += 1 }
        let range = sorted[i].element..<(sorted[j - 1].element + 1)
        let bytes = try read(range)
        for k in i..<j {
            let from = (sorted[k].element - range.lowerBound) * recordSize, to = sorted[k].offset * recordSize
            out.replaceSubrange(to..<(to + recordSize), with: bytes[from..<(from + recordSize)])
        }
        i = j
    }
    return out
}
