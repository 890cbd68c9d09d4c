import PipelineGraph
import TensorRuntime

/// Where a loader is: the batch `index` of epoch `epoch`.
struct LoaderPosition: Equatable, Sendable, CustomStringConvertible {
    var epoch: Int
    var index: Int
    var description: String { "epoch \(epoch), batch \(index)" }
}

/// Cuts a dataset into batches, epoch after epoch, in an order that depends only on the seed.
///
/// The batch at a position is a pure function of (seed, stage id, epoch, index): epochs are
/// shuffled by a Fisher-Yates permutation drawn from a Philox stream keyed by the pipeline seed, the
/// stage id and the epoch, and random crops by the same and the item's place in the epoch.
final class BatchLoader: @unchecked Sendable {
    let source: any ItemSource
    let batch: Int
    let shuffle: Bool
    let dropLast: Bool
    let seed: UInt64
    let stageID: String
    /// The rows of every batch this process loads (a data-parallel rank's shard); nil: all.
    let shard: Range<Int>?
    private let orders = Locked<(epoch: Int, order: [Int])?>(nil)

    init(source: any ItemSource, batch: Int, shuffle: Bool, dropLast: Bool, seed: UInt64, stageID: String,
         shard: Range<Int>? = nil) {
        self.source = source
        self.shard = shard
        self.batch = batch
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.seed = seed
        self.stageID = stageID
    }

    var batchesPerEpoch: Int {
        dropLast ? source.count / batch : (source.count + batch - 1) / batch
    }

    func next(after p: LoaderPosition) -> LoaderPosition {
        p.index + 1 < batchesPerEpoch ? LoaderPosition(epoch: p.epoch, index: p.index + 1) : LoaderPosition(epoch: p.epoch + 1, index: 0)
    }

    /// The order of the items in `epoch`.
    func order(epoch: Int) -> [Int] {
        if let cached = orders.withLock({ $0 }), cached.epoch == epoch { return cached.order }
        var order = Array(0..<source.count)
        if shuffle {
            var rng = PhiloxRandom(seed: seed, stream: stableHash("shuffle/" + stageID), counter: UInt64(epoch) << 32)
            for i in stride(from: order.count - 1, to: 0, by: -1) {
                let j = Int((UInt64(rng.next()) &* UInt64(i + 1)) >> 32)
                order.swapAt(i, j)
            }
        }
        orders.withLock { $0 = (epoch, order) }
        return order
    }

    /// The batch at `p` (this process's shard of it). The order and the crops depend only on
    /// an item's place in the epoch, so the shards of all ranks together are the whole batch.
    func batch(at p: LoaderPosition) throws -> DataBatch {
        let order = self.order(epoch: p.epoch)
        var start = p.index * batch
        var end = min(start + batch, order.count)
        if let shard {
            end = min(start + shard.upperBound, end)
            start += shard.lowerBound
        }
        return try load(order: order, range: start..<end, epochKey: UInt64(p.epoch) + 1)
    }

    /// The fixed batch for sinks and metrics: the first batch of the unshuffled data (random crops
    /// drawn from a stream no epoch uses).
    func fixedBatch() throws -> DataBatch {
        try load(order: Array(0..<min(batch, source.count)), range: 0..<min(batch, source.count), epochKey: 0)
    }

    private func load(order: [Int], range: Range<Int>, epochKey: UInt64) throws -> DataBatch {
        let stream = stableHash("crop/" + stageID), seed = self.seed
        return try source.load(order: order, range: range) { slot in
            PhiloxRandom(seed: seed, stream: stream, counter: epochKey << 40 | UInt64(range.lowerBound + slot) << 4)
        }
    }
}
