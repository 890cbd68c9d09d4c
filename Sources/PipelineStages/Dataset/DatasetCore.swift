import Foundation
import PipelineGraph
import TensorRuntime

/// What every dataset stage shares: batching, shuffling, prefetching, the fixed sample batch,
/// the served resolution and pyramid, and the loader's position in checkpoints. Public only so
/// that `DatasetBacked` can name it; everything in it is internal.
public final class DatasetCore: @unchecked Sendable {
    static let keys: [ConfigKey] = ImagePreprocessing.keys + [
        ConfigKey("batch", .int(min: 1, max: 1 << 16), default: .number(64), "Images per batch."),
        ConfigKey("shuffle", .bool, default: .bool(true), "Shuffle every epoch (a permutation from the pipeline seed, the stage id and the epoch)."),
        ConfigKey("dropLast", .bool, default: .bool(true), "Drop the last, incomplete batch of an epoch."),
        ConfigKey("prefetch", .int(min: 0, max: 64), default: .number(3), "Batches decoded ahead on a background queue (0: decode when asked)."),
        ConfigKey("pyramid", .int(min: 1), default: .null, "Also output 'pyramid': the batch at every halving of its size down to this side (MSG-GAN)."),
        ConfigKey("resolution", .wire, default: .null, "An integer input setting the served side (progressive growing); area downsampling from 'size'."),
        ConfigKey("servedBatch", .wire, default: .null, "An integer input: serve the first this many images of each batch of 'batch' (a progressive schedule's per-resolution batch)."),
    ]

    let loader: BatchLoader
    let stageID: String
    let prefetcher: Prefetcher?
    let outputs: [String: PortType]
    let pyramidSides: [Int]?
    /// Ranks of a data-parallel run; each serves its shard of every training batch.
    let ranks: Int
    private let position = Locked(LoaderPosition(epoch: 0, index: 0))
    private let fixed = Locked<DataBatch?>(nil)

    init(source: any ItemSource, config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let batch = config.int("batch"), dropLast = config.bool("dropLast")
        if dropLast && source.count < batch {
            throw StageProblem(key: "batch", "the dataset holds \(source.count) images, fewer than one batch of \(batch) (lower 'batch' or set 'dropLast' to false)")
        }
        stageID = config.stageID
        ranks = context.ranks
        let shard = try context.shard(ofBatch: batch, key: "batch")
        if ranks > 1 && !dropLast && source.count % batch != 0 {
            throw StageProblem(key: "dropLast", "the last batch of \(source.count % batch) images cannot be split evenly over \(ranks) ranks; set 'dropLast' to true")
        }
        // With a served batch the shard is cut from the served prefix, known only when served:
        // load the whole batch then.
        let loadedShard = ranks > 1 && inputs["servedBatch"] == nil ? shard : nil
        loader = BatchLoader(source: source, batch: batch, shuffle: config.bool("shuffle"), dropLast: dropLast,
                             seed: context.seed, stageID: config.stageID, shard: loadedShard)
        if let t = inputs["resolution"], t != .integer {
            throw StageProblem(key: "resolution", "expected an integer input, found \(t)")
        }
        if let t = inputs["servedBatch"], t != .integer {
            throw StageProblem(key: "servedBatch", "expected an integer input, found \(t)")
        }
        let item = source.itemShape
        let share = shard.count
        var outputs: [String: PortType] = ["images": .tensor([share] + item)]
        if source.hasLabels { outputs["labels"] = .tensor([share]) }
        if let smallest = config.optionalInt("pyramid") {
            pyramidSides = try DatasetCore.pyramidSides(height: item[1], width: item[2], smallest: smallest, key: "pyramid")
            outputs["pyramid"] = .pyramid(pyramidSides!.map { [share, item[0], $0, $0] })
        } else {
            pyramidSides = nil
        }
        self.outputs = outputs
        let depth = config.int("prefetch")
        if depth > 0 {
            let loader = self.loader
            prefetcher = Prefetcher(label: "ganflow.data.\(config.stageID)", depth: depth,
                                    advance: { loader.next(after: $0) },
                                    produce: { p in Result { try loader.batch(at: p) } })
        } else {
            prefetcher = nil
        }
    }

    /// Sides of a pyramid from `smallest` up to the full square side, coarsest first.
    static func pyramidSides(height: Int, width: Int, smallest: Int, key: String) throws -> [Int] {
        guard height == width else { throw StageProblem(key: key, "a pyramid needs square images, not \(width)x\(height)") }
        var sides = [height]
        while sides[0] > smallest {
            guard sides[0] % 2 == 0 else {
                throw StageProblem(key: key, "cannot halve \(height) down to \(smallest): \(sides[0]) is odd (use sizes that are a power of two times \(smallest))")
            }
            sides.insert(sides[0] / 2, at: 0)
        }
        guard sides[0] == smallest else {
            throw StageProblem(key: key, "halving \(height) does not reach \(smallest) (use sizes that are a power of two times \(smallest))")
        }
        return sides
    }

    var batchesPerEpoch: Int { loader.batchesPerEpoch }

    /// The next training batch (advancing the position), or the fixed batch for a sample evaluation.
    func nextBatch(_ mode: EvaluationMode) throws -> DataBatch {
        if mode == .sample {
            if let b = fixed.withLock({ $0 }) { return b }
            let b = try loader.fixedBatch()
            fixed.withLock { $0 = b }
            return b
        }
        let p = position.withLock { $0 }
        let b = try prefetcher?.take(p) ?? loader.batch(at: p)
        position.withLock { $0 = loader.next(after: p) }
        return b
    }

    func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let batch = try nextBatch(e.mode)
        var images = batch.images
        var labels = batch.labels
        if let n = e.integer("servedBatch") {
            let count = try DatasetCore.servedCount(n, loaded: images.shape[0], configured: loader.batch)
            var rows = 0..<count
            if e.ranks > 1 && e.mode == .train {
                guard count % e.ranks == 0 else {
                    throw StageProblem(key: "servedBatch", "a served batch of \(count) does not divide over \(e.ranks) ranks")
                }
                rows = e.shard(ofBatch: count)
            }
            if rows != 0..<images.shape[0] {
                images = try images.sliced(axis: 0, rows)
                labels = labels.map { Array($0[rows]) }
            }
        }
        if let r = e.integer("resolution") {
            images = try DatasetCore.serve(images, side: r)
        }
        var out: [String: PortValue] = ["images": .tensor(images)]
        if let labels, e.outputs.contains("labels") {
            out["labels"] = .tensor(try Tensor(shape: [labels.count], scalars: labels.map(Float.init)))
        }
        if e.outputs.contains("pyramid"), let sides = pyramidSides {
            out["pyramid"] = .pyramid(try DatasetCore.pyramid(images, sides: sides.filter { $0 <= images.shape[2] }))
        }
        return out
    }

    /// How many images of a loaded batch to serve when `servedBatch` asks for `n`: all of a short
    /// last batch, never more than were loaded.
    static func servedCount(_ n: Int, loaded: Int, configured: Int) throws -> Int {
        guard n >= 1, n <= configured else {
            throw StageProblem(key: "servedBatch", "a served batch of \(n) needs 1 to 'batch' (\(configured)) images")
        }
        return min(n, loaded)
    }

    /// Output types when the integer inputs take `integers`' values (the shapes a progressive
    /// schedule's resolutions and batch sizes give).
    func outputTypes(integers: [String: Int]) throws -> [String: PortType] {
        guard case .tensor(var shape)? = outputs["images"] else { return outputs }
        var out = outputs
        if let n = integers["servedBatch"] {
            let count = try DatasetCore.servedCount(n, loaded: loader.batch, configured: loader.batch)
            guard count % ranks == 0 else {
                throw StageProblem(key: "servedBatch", "a served batch of \(count) does not divide over \(ranks) ranks")
            }
            shape[0] = count / ranks
            if out["labels"] != nil { out["labels"] = .tensor([shape[0]]) }
        }
        if let r = integers["resolution"] {
            guard r > 0, r <= shape[2], shape[2] % r == 0 else {
                throw StageProblem(key: "resolution", "resolution \(r) must divide the dataset's size \(shape[2])")
            }
            shape[2] = r
            shape[3] = r
        }
        out["images"] = .tensor(shape)
        if let sides = pyramidSides {
            out["pyramid"] = .pyramid(sides.filter { $0 <= shape[2] }.map { [shape[0], shape[1], $0, $0] })
        }
        return out
    }

    /// `images` area-downsampled to `side` x `side`.
    static func serve(_ images: Tensor, side: Int) throws -> Tensor {
        let full = images.shape[2]
        if side == full { return images }
        guard side > 0, side < full, full % side == 0 else {
            throw StageProblem(key: "resolution", "resolution \(side) must divide the dataset's size \(full)")
        }
        return try images.downsampleArea(factor: full / side)
    }

    /// `images` at each of `sides` (ascending, the last its own side), by repeated area halving.
    static func pyramid(_ images: Tensor, sides: [Int]) throws -> [Tensor] {
        var levels = [images]
        while levels[0].shape[2] > sides[0] {
            levels.insert(try levels[0].downsampleArea(factor: 2), at: 0)
        }
        return levels
    }

    func checkpointState() -> StageState {
        let p = position.withLock { $0 }
        return StageState(values: ["epoch": String(p.epoch), "index": String(p.index), "items": String(loader.source.count)])
    }

    func restore(_ state: StageState) throws {
        guard let epoch = state.values["epoch"].flatMap(Int.init), let index = state.values["index"].flatMap(Int.init) else {
            throw StageProblem("the checkpoint has no loader position (epoch, index) for dataset '\(stageID)'")
        }
        if let items = state.values["items"].flatMap(Int.init), items != loader.source.count {
            throw StageProblem("the checkpoint's dataset '\(stageID)' held \(items) images; this one holds \(loader.source.count)")
        }
        guard index >= 0, index < max(loader.batchesPerEpoch, 1), epoch >= 0 else {
            throw StageProblem("loader position epoch \(epoch), batch \(index) does not fit \(loader.batchesPerEpoch) batches per epoch")
        }
        position.withLock { $0 = LoaderPosition(epoch: epoch, index: index) }
    }

    /// The position of the next training batch.
    var nextPosition: LoaderPosition { position.withLock { $0 } }

    /// Seconds evaluations spent waiting for the prefetcher (in all, and for the first batch), and
    /// the batches they took.
    var waitStatistics: (seconds: Double, first: Double, batches: Int) {
        (prefetcher?.waitSeconds ?? 0, prefetcher?.firstWaitSeconds ?? 0, prefetcher?.taken ?? 0)
    }

    func finish() {
        prefetcher?.stop()
        if let report = loader.source.finishReport() {
            FileHandle.standardError.write(Data("\(stageID): \(report)\n".utf8))
        }
    }
}

/// A dataset stage: one that reads its items from a source and leaves the rest to a `DatasetCore`.
public protocol DatasetBacked: EpochSource {
    var core: DatasetCore { get }
}

extension DatasetBacked {
    public var outputs: [String: PortType] { core.outputs }
    public var batchesPerEpoch: Int { core.batchesPerEpoch }
    public func outputTypes(for inputs: [String: PortType]) throws -> [String: PortType] { core.outputs }
    public func outputTypes(for inputs: [String: PortType], integers: [String: Int]) throws -> [String: PortType] {
        try core.outputTypes(integers: integers)
    }
    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] { try core.evaluate(e) }
    public func checkpointState() throws -> StageState { core.checkpointState() }
    public func restore(_ state: StageState) throws { try core.restore(state) }
    public func finish() throws { core.finish() }
}
