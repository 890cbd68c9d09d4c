import Dispatch
import Foundation
import ImageIO
import TensorRuntime

/// One batch as a dataset serves it: images `[N, C, H, W]` in [-1, 1] and, when known, class labels.
struct DataBatch: @unchecked Sendable {
    var images: Tensor
    var labels: [Int]?
}

/// The items a dataset stage reads, by index.
///
/// `load` must be a pure function of its arguments (and the files): the prefetcher relies on it
/// to give the same batches as loading on the caller's thread.
protocol ItemSource: AnyObject, Sendable {
    var count: Int { get }
    /// `[C, H, W]` of every served item.
    var itemShape: [Int] { get }
    var hasLabels: Bool { get }
    /// Decodes items `order[range]` into one batch; `random(slot)` is the generator for the item
    /// in that slot of the batch (used by random crops).
    func load(order: [Int], range: Range<Int>, random: (Int) -> PhiloxRandom) throws -> DataBatch
    /// One line for the end of the run (files skipped), or nil.
    func finishReport() -> String?
}

extension ItemSource {
    func finishReport() -> String? { nil }
}

/// Runs `body(i)` for `i` in `0..<count` on every core, and rethrows the error of the lowest `i`
/// that failed, so which error is reported does not depend on timing.
func parallelFor(_ count: Int, minimumPerTask: Int = 1, _ body: @Sendable (Int) throws -> Void) throws {
    let tasks = max(1, min(ProcessInfo.processInfo.activeProcessorCount * 2, count / max(minimumPerTask, 1)))
    if tasks <= 1 {
        for i in 0..<count { try body(i) }
        return
    }
    let failures = Locked<[(Int, any Error)]>([])
    DispatchQueue.concurrentPerform(iterations: tasks) { t in
        let lo = t * count / tasks, hi = (t + 1) * count / tasks
        for i in lo..<hi {
            do { try body(i) } catch {
                failures.withLock { $0.append((i, error)) }
                return
            }
        }
    }
    if let first = failures.withLock({ $0.min { $0.0 < $1.0 } }) { throw first.1 }
}

/// Reads byte records (IDX, CIFAR-10) from disk on demand.
protocol RecordReader: AnyObject, Sendable {
    /// The image bytes of records `indices`, record after record in the order given.
    func images(_ indices: [Int]) throws -> [UInt8]
}

/// Items stored as bytes, record after record in CHW order (IDX, CIFAR-10): whole in memory, or
/// read batch by batch from disk when the data is larger than the configured limit.
final class ByteRecordSource: ItemSource, @unchecked Sendable {
    enum Storage {
        case memory([UInt8])
        /// A prepared dataset's pixels, memory-mapped.
        case mapped(PreparedDataset)
        case disk(any RecordReader)
    }

    let storage: Storage
    let count: Int
    /// `[C, H, W]` of a stored record.
    let recordShape: [Int]
    let labels: [Int]?
    let preprocessing: ImagePreprocessing
    let itemShape: [Int]
    /// Byte to [-1, 1], exactly `2 * (b / 255) - 1`.
    let table: [Float]

    init(storage: Storage, count: Int, recordShape: [Int], labels: [Int]?, preprocessing: ImagePreprocessing) throws {
        self.storage = storage
        self.count = count
        self.recordShape = recordShape
        self.labels = labels
        self.preprocessing = preprocessing
        itemShape = try preprocessing.itemShape(height: recordShape[1], width: recordShape[2])
        table = (0..<256).map { PixelRange.symmetric.fromUnit(Float($0) / 255) }
    }

    var hasLabels: Bool { labels != nil }

    func load(order: [Int], range: Range<Int>, random: (Int) -> PhiloxRandom) throws -> DataBatch {
        let indices = Array(order[range])
        let recordSize = recordShape.reduce(1, *)
        let bytes: [UInt8]
        switch storage {
        case .memory(let all):
            bytes = all.withUnsafeBytes { ByteRecordSource.gather(indices, recordSize: recordSize, from: $0) }
        case .mapped(let file):
            bytes = ByteRecordSource.gather(indices, recordSize: recordSize, from: file.pixels)
        case .disk(let reader):
            bytes = try reader.images(indices)
        }
        let itemSize = itemShape.reduce(1, *)
        let out = Tensor(uninitialized: [indices.count] + itemShape)
        let dst = SendablePointer(out.data)
        if itemShape == recordShape {
            // Served as stored: a table lookup per byte, each row reversed for a mirrored item (as
            // `preprocessing.apply` would, drawing from the same generator).
            let table = self.table, width = recordShape[2]
            let mirrored = (0..<indices.count).map { slot in
                guard preprocessing.mirror else { return false }
                var rng = random(slot)
                return preprocessing.mirrors(&rng)
            }
            try parallelFor(indices.count, minimumPerTask: 16) { i in
                bytes.withUnsafeBufferPointer { src in
                    let d = dst.pointer + i * itemSize, s = src.baseAddress! + i * recordSize
                    if mirrored[i] {
                        for row in stride(from: 0, to: recordSize, by: width) {
                            for x in 0..<width { d[row + x] = table[Int(s[row + width - 1 - x])] }
                        }
                    } else {
                        for k in 0..<recordSize { d[k] = table[Int(s[k])] }
                    }
                }
            }
        } else {
            let shape = recordShape, preprocessing = self.preprocessing
            let generators = (0..<indices.count).map(random)
            try parallelFor(indices.count, minimumPerTask: 8) { i in
                let pixels = bytes[(i * recordSize)..<((i + 1) * recordSize)].map { Float($0) / 255 }
                var rng = generators[i]
                let image = try preprocessing.apply(Image(width: shape[2], height: shape[1], channels: shape[0], pixels: pixels), rng: &rng)
                image.write(symmetricInto: dst.pointer + i * itemSize)
            }
        }
        return DataBatch(images: out, labels: labels.map { l in indices.map { l[$0] } })
    }

    /// Records `indices` of `all`, one after the other.
    private static func gather(_ indices: [Int], recordSize: Int, from all: UnsafeRawBufferPointer) -> [UInt8] {
        var gathered = [UInt8](repeating: 0, count: indices.count * recordSize)
        gathered.withUnsafeMutableBytes { dst in
            for (i, index) in indices.enumerated() {
                (dst.baseAddress! + i * recordSize).copyMemory(from: all.baseAddress! + index * recordSize, byteCount: recordSize)
            }
        }
        return gathered
    }
}
