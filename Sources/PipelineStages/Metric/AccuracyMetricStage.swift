import NeuralNet
import PipelineGraph
import TensorRuntime

/// The accuracy of a `classifier.cnn` stage on a whole labelled dataset (the test split).
///
///     "test": { "type": "dataset.idx", "images": ".../t10k-images-idx3-ubyte.gz", "labels": ".../t10k-labels-idx1-ubyte.gz" },
///     "accuracy": { "type": "metric.accuracy", "classifier": "C", "data": "test", "every": 500 }
///
/// Every item of `data` (or the first `limit`) goes through the classifier with its running
/// batch-norm statistics, `chunk` images at a time. Outputs `accuracy` and `loss` (the mean
/// cross-entropy).
public final class AccuracyMetricStage: Stage, @unchecked Sendable {
    public static let typeName = "metric.accuracy"
    public static let summary = "Accuracy and cross-entropy of a classifier stage on a whole labelled dataset stage; outputs 'accuracy', 'loss'."
    public static let scalarKind = ScalarKind.measurement
    public static let configKeys: [ConfigKey] = [
        ConfigKey("classifier", .stageRef, "The classifier stage (classifier.cnn)."),
        ConfigKey("data", .stageRef, "A dataset stage with labels (its items are read in order, unshuffled)."),
        ConfigKey("limit", .int(min: 1), default: .null, "Score only the first this many items (null: all)."),
        ConfigKey("chunk", .int(min: 1, max: 65536), default: .number(500), "Images per forward pass."),
    ]

    public let outputs: [String: PortType] = ["accuracy": .scalar, "loss": .scalar, "measured": .effect]
    let classifier: ClassifierStage
    let data: any WholeDataset
    let limit: Int?
    let chunk: Int

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        guard let c = context.stage(config.string("classifier")) as? ClassifierStage else {
            throw StageProblem(key: "classifier", "stage '\(config.string("classifier"))' is not a classifier (classifier.cnn)")
        }
        guard let d = context.stage(config.string("data")) as? any WholeDataset else {
            throw StageProblem(key: "data", "stage '\(config.string("data"))' is not a dataset")
        }
        guard d.hasLabels else {
            throw StageProblem(key: "data", "dataset '\(config.string("data"))' has no labels (give its 'labels' file)")
        }
        classifier = c
        data = d
        limit = config.optionalInt("limit")
        chunk = config.int("chunk")
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        var hits = 0, seen = 0
        var loss: Double = 0
        try withoutGradients {
            try data.forEachChunk(limit: limit, chunk: chunk) { images, labels in
                let logits = try classifier.classifier.forward(images, mode: .eval)
                let labels = labels ?? []
                let target = try Tensor(shape: [labels.count], scalars: labels.map(Float.init))
                loss += Double(try Tensor.crossEntropy(logits, labels: target, reduction: .sum).item())
                hits += zip(ClassScores.argmax(logits), labels).filter { $0 == $1 }.count
                seen += labels.count
            }
        }
        let n = Double(max(seen, 1))
        return ["accuracy": .scalar(Tensor(Float(Double(hits) / n))), "loss": .scalar(Tensor(Float(loss / n))), "measured": .effect]
    }
}
