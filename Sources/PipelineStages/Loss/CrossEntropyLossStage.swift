import PipelineGraph
import TensorRuntime

/// Softmax cross-entropy of a classifier's logits against class labels.
///
///     "loss": { "type": "loss.crossentropy", "logits": "C.logits", "labels": "data.labels" }
///
/// Outputs `loss` (the mean over the batch) and `accuracy` (the fraction of the batch whose largest
/// logit is the label). Like every output, `accuracy` is computed only when something asks for it;
/// an optimizer minimising `loss` does not.
public final class CrossEntropyLossStage: Stage, @unchecked Sendable {
    public static let typeName = "loss.crossentropy"
    public static let summary = "Softmax cross-entropy of logits [N, K] against labels [N]; outputs 'loss' and 'accuracy' (of the batch)."
    public static let scalarKind = ScalarKind.objective
    public static let configKeys: [ConfigKey] = [
        ConfigKey("logits", .wire, "The classifier's logits [N, K]."),
        ConfigKey("labels", .wire, "Class indices [N] (a dataset's 'labels')."),
    ]

    public let outputs: [String: PortType] = ["loss": .scalar, "accuracy": .scalar]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        guard let logits = inputs["logits"]?.shape, logits.count == 2 else {
            throw StageProblem(key: "logits", "expected logits [N, K], found \(inputs["logits"].map { "\($0)" } ?? "nothing")")
        }
        guard let labels = inputs["labels"]?.shape, labels == [logits[0]] else {
            throw StageProblem(key: "labels", "expected labels [\(logits[0])] for logits \(describe(logits)), found \(inputs["labels"].map { "\($0)" } ?? "nothing")")
        }
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let logits = try e.tensor("logits"), labels = try e.tensor("labels")
        var out: [String: PortValue] = [:]
        if e.outputs.contains("loss") {
            do {
                out["loss"] = .scalar(try Tensor.crossEntropy(logits, labels: labels))
            } catch let error as TensorError {
                throw StageProblem(key: "labels", error.message)
            }
        }
        if e.outputs.contains("accuracy") {
            let predicted = ClassScores.argmax(logits)
            let hits = zip(predicted, labels.scalars).filter { Float($0) == $1 }.count
            out["accuracy"] = .scalar(Tensor(Float(hits) / Float(max(predicted.count, 1))))
        }
        return out
    }
}

/// Reading class decisions from logits.
public enum ClassScores {
    /// The index of the largest logit of each row of [N, K] (the first on ties).
    public static func argmax(_ logits: Tensor) -> [Int] {
        let k = logits.shape[1], v = logits.scalars
        return (0..<logits.shape[0]).map { i in
            var best = 0
            for j in 1..<k where v[i * k + j] > v[i * k + best] { best = j }
            return best
        }
    }
}
