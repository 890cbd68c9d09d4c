import PipelineGraph
import TensorRuntime

/// A dataset stage whose every item can be read in order, for metrics that score a whole split
/// (test accuracy, reference features) rather than one batch.
public protocol WholeDataset: Stage {
    /// Items in the dataset.
    var itemCount: Int { get }
    /// Whether the dataset has class labels.
    var hasLabels: Bool { get }
    /// Items `range` (in file order, without shuffling), preprocessed as the stage serves them:
    /// images [n, C, H, W] in [-1, 1] and labels when known.
    func items(_ range: Range<Int>) throws -> (images: Tensor, labels: [Int]?)
}

extension WholeDataset {
    /// Calls `body` on the first `limit` items (all when nil), `chunk` at a time.
    func forEachChunk(limit: Int?, chunk: Int, _ body: (Tensor, [Int]?) throws -> Void) throws {
        let n = min(limit ?? itemCount, itemCount)
        var start = 0
        while start < n {
            let end = min(start + chunk, n)
            let (images, labels) = try items(start..<end)
            try body(images, labels)
            start = end
        }
    }
}

extension DatasetCore {
    func items(_ range: Range<Int>) throws -> (images: Tensor, labels: [Int]?) {
        let source = loader.source
        // Random crops, if configured, are drawn from a stream no epoch uses, as for the fixed batch.
        let stream = stableHash("items/" + stageID)
        let batch = try source.load(order: Array(0..<source.count), range: range) { slot in
            PhiloxRandom(seed: 0, stream: stream, counter: UInt64(range.lowerBound + slot) << 4)
        }
        return (batch.images, batch.labels)
    }
}

/// Every dataset stage reads its whole split through its `DatasetCore`.
extension WholeDataset where Self: DatasetBacked {
    public var itemCount: Int { core.loader.source.count }
    public var hasLabels: Bool { core.loader.source.hasLabels }
    public func items(_ range: Range<Int>) throws -> (images: Tensor, labels: [Int]?) { try core.items(range) }
}

extension IDXDatasetStage: WholeDataset {}
extension ImageFolderDatasetStage: WholeDataset {}
extension CIFARDatasetStage: WholeDataset {}
extension PreparedDatasetStage: WholeDataset {}
