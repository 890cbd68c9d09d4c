import Foundation
import ImageIO
import PipelineGraph
import TensorRuntime

/// CIFAR-10 in its binary format (`data_batch_1.bin` ... `data_batch_5.bin`, `test_batch.bin`).
///
///     "data": { "type": "dataset.cifar", "path": "cifar-10-batches-bin", "split": "train" }
///
/// `path` is one batch file or the folder holding them (plain or `.gz`). Outputs `images`
/// `[batch, 3, 32, 32]` (or as `size`, `fit` and `channels` say) in [-1, 1] and `labels`.
public final class CIFARDatasetStage: DatasetBacked, @unchecked Sendable {
    public static let typeName = "dataset.cifar"
    public static let summary = "CIFAR-10 binary batches (plain or .gz); outputs 'images' in [-1, 1] and 'labels'."
    public static let lane = StageLane.data
    public static let configKeys: [ConfigKey] = [
        ConfigKey("path", .path, "A CIFAR-10 batch file, or the folder holding data_batch_1..5.bin and test_batch.bin."),
        ConfigKey("split", .string(choices: ["train", "test"]), default: .string("train"), "With a folder: the five training batches or the test batch."),
        ConfigKey("streamAbove", .int(min: 0), default: .number(1024), "Megabytes of image data above which batches are read from disk instead of loading the files whole."),
    ] + DatasetCore.keys

    public let core: DatasetCore

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let path = try DataPaths.resolve(config.string("path"), key: "path", context: context)
        let files = try CIFARDatasetStage.batchFiles(path, split: config.string("split"))
        let source: ByteRecordSource
        do {
            let opened = try files.map { try CIFAR10File(path: $0) }
            let count = opened.reduce(0) { $0 + $1.count }
            let preprocessing = try ImagePreprocessing(config: config, fileChannels: 3)
            let storage: ByteRecordSource.Storage
            var labels = [UInt8]()
            if count * CIFAR10File.imageSize > config.int("streamAbove") << 20 {
                // Labels are small: read them now (which also checks every record's label).
                for f in opened { labels += try f.records(0..<f.count).labels }
                storage = .disk(CIFARRecordReader(opened))
            } else {
                var images = [UInt8]()
                for f in opened {
                    let part = try f.records(0..<f.count)
                    images += part.images
                    labels += part.labels
                }
                storage = .memory(images)
            }
            source = try ByteRecordSource(storage: storage, count: count, recordShape: [3, 32, 32], labels: labels.map(Int.init),
                                          preprocessing: preprocessing)
        } catch let e as ImageIOError {
            throw StageProblem(key: "path", e.message)
        }
        core = try DatasetCore(source: source, config: config, inputs: inputs, context: context)
    }

    /// The batch files of `split` in a folder (plain or .gz), or the file itself.
    static func batchFiles(_ path: String, split: String) throws -> [String] {
        guard DataPaths.isDirectory(path) else { return [path] }
        let names = split == "train" ? (1...5).map { "data_batch_\($0).bin" } : ["test_batch.bin"]
        var files: [String] = []
        for name in names {
            let plain = (path as NSString).appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: plain) {
                files.append(plain)
            } else if FileManager.default.fileExists(atPath: plain + ".gz") {
                files.append(plain + ".gz")
            } else {
                throw StageProblem(key: "path", "\(path): no \(name) (or \(name).gz); expected the CIFAR-10 binary batches (\(names.joined(separator: ", ")))")
            }
        }
        return files
    }
}

/// Reads CIFAR-10 images from several batch files, as one sequence of records.
final class CIFARRecordReader: RecordReader, @unchecked Sendable {
    // Each file keeps a read position: one reader at a time.
    private let lock = NSLock()
    private let files: [CIFAR10File]
    private let starts: [Int]

    init(_ files: [CIFAR10File]) {
        var starts = [0]
        for f in files { starts.append(starts.last! + f.count) }
        self.starts = starts
        self.files = files
    }

    func images(_ indices: [Int]) throws -> [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        return try readRuns(indices, recordSize: CIFAR10File.imageSize) { range in
            // A run may cross from one file into the next.
            var out = [UInt8]()
            var lo = range.lowerBound
            while lo < range.upperBound {
                let f = starts.lastIndex { $0 <= lo }!
                let hi = min(range.upperBound, starts[f + 1])
                out += try files[f].records((lo - starts[f])..<(hi - starts[f])).images
                lo = hi
            }
            return out
        }
    }
}
