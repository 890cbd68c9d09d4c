import PipelineGraph
import TensorRuntime

/// Class labels for generated images: uniform random class ids while training, a fixed cycle
/// (row i gets class i mod classes) for sinks and metrics.
///
///     "y": { "type": "noise.classes", "classes": 10, "batch": 64 }
///
/// Output `labels` [batch], class ids as floats like a dataset's `labels`. Training evaluations
/// draw fresh ids from a stream keyed by the pipeline seed, the stage id and the evaluation index;
/// in a data-parallel run each rank keeps its rows of the one draw, as `noise.normal` does.
public final class ClassLabelsStage: ClassLabelSource, @unchecked Sendable {
    public static let typeName = "noise.classes"
    public static let summary = "Class ids for a conditional generator: uniform while training, row i -> i mod classes for sinks and metrics; output 'labels'."
    public static let lane = StageLane.data
    public static let configKeys: [ConfigKey] = [
        ConfigKey("classes", .int(min: 2, max: 1 << 16), "Number of classes."),
        ConfigKey("batch", .int(min: 1, max: 1 << 16), default: .number(64), "Labels per evaluation (the latent batch)."),
        ConfigKey("fixed", .intList(), default: .null, "Classes of sink and metric rows, repeated over the batch (null: 0, 1, ..., classes - 1)."),
    ]

    let classes: Int
    let batch: Int
    let fixed: [Int]
    public let outputs: [String: PortType]
    public var classCount: Int? { classes }

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let k = config.int("classes")
        let fixed = config.isNull("fixed") ? Array(0..<k) : config.ints("fixed")
        if fixed.isEmpty { throw StageProblem(key: "fixed", "expected at least one class") }
        if let bad = fixed.first(where: { $0 < 0 || $0 >= k }) {
            throw StageProblem(key: "fixed", "class \(bad) is not one of 0...\(k - 1) ('classes' is \(k))")
        }
        classes = k
        self.fixed = fixed
        batch = config.int("batch")
        let share = try context.shard(ofBatch: batch, key: "batch").count
        outputs = ["labels": .tensor([share])]
    }

    /// The labels of a batch: `fixed` repeated in sample evaluations, uniform ids otherwise.
    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let ids: [Int]
        if e.mode == .sample {
            ids = (0..<batch).map { fixed[$0 % fixed.count] }
        } else {
            var rng = e.sharedRandom("labels")
            ids = (0..<batch).map { _ in Int(rng.next() % UInt32(classes)) }
        }
        let rows = e.shard(ofBatch: batch)
        return ["labels": .tensor(try Tensor(shape: [rows.count], scalars: ids[rows].map(Float.init)))]
    }
}

/// A dataset's labels range over its class count: one more than the largest label.
extension WholeDataset where Self: DatasetBacked {
    public var classCount: Int? {
        switch core.loader.source {
        case let s as ByteRecordSource: return s.labels.flatMap { $0.max() }.map { $0 + 1 }
        case let s as FolderSource: return s.labelled ? s.folder.samples.map(\.label).max().map { $0 + 1 } : nil
        default: return nil
        }
    }
}

extension IDXDatasetStage: ClassLabelSource {}
extension CIFARDatasetStage: ClassLabelSource {}
extension PreparedDatasetStage: ClassLabelSource {}
extension ImageFolderDatasetStage: ClassLabelSource {}
