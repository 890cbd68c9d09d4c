import Foundation
import NeuralNet
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

/// Writes the weights of a fresh (untrained) classifier, as `ganflow export` writes a trained one.
func writeClassifierWeights(to path: String, width: Int = 4, hidden: Int = 16, seed: UInt64 = 5) throws {
    var rng = PhiloxRandom(seed: seed)
    let c = try ConvClassifier(channels: 1, size: 28, classes: 10, width: width, hidden: hidden, rng: &rng)
    try NetworkCore(net: c, ports: []).stateDict(ema: false).write(to: path)
}

@Suite struct ClassifierStageTests {
    static let images = fixture("idx/t10k-256-images-idx3-ubyte.gz"), labels = fixture("idx/t10k-256-labels-idx1-ubyte.gz")

    static func stages(every: Int = 5) -> String {
        """
        "data": { "type": "dataset.idx", "images": "\(images)", "labels": "\(labels)", "batch": 32 },
        "test": { "type": "dataset.idx", "images": "\(images)", "labels": "\(labels)", "batch": 32, "shuffle": false },
        "C": { "type": "classifier.cnn", "input": "data.images", "width": 4, "hidden": 16 },
        "loss": { "type": "loss.crossentropy", "logits": "C.logits", "labels": "data.labels" },
        "opt": { "type": "optimizer.adam", "minimize": "loss.loss", "parameters": "C", "lr": 0.003, "betas": [0.9, 0.999] },
        "accuracy": { "type": "metric.accuracy", "classifier": "C", "data": "test", "every": \(every), "chunk": 100 }
        """
    }

    static func metricsLines(_ dir: String) throws -> [[String: Any]] {
        try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    @Test func parametersHavePyTorchSequentialNames() throws {
        let p = try pipeline(stages: Self.stages(), schedule: #"[{ "run": "opt" }]"#)
        let c = stage(p, "C", as: ClassifierStage.self)
        #expect(shapes(c.parameters) == [
            "0.weight": [4, 1, 3, 3], "0.bias": [4], "2.weight": [8, 4, 4, 4], "3.weight": [8], "3.bias": [8],
            "5.weight": [8, 8, 4, 4], "6.weight": [8], "6.bias": [8], "8.weight": [16, 8, 3, 3], "9.weight": [16], "9.bias": [16],
            "12.weight": [16, 256], "12.bias": [16], "14.weight": [10, 16], "14.bias": [10],
        ])
        #expect(c.outputs == ["logits": .tensor([32, 10])])
        #expect(try c.stateDict(ema: false).names.contains("9.running_var"))
    }

    @Test func trainsAndScoresTheWholeTestSet() throws {
        let dir = temporaryDirectory("classifier")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try pipeline(stages: Self.stages(), schedule: #"[{ "run": "opt" }]"#, steps: 16)
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        let summary = try Runner(pipeline: p, options: options).run()
        let lines = try Self.metricsLines(dir)
        let losses = lines.map { $0["loss.loss"] as! Double }
        #expect(losses.suffix(4).reduce(0, +) < losses.prefix(4).reduce(0, +), "\(losses)")
        // The metric runs on steps 5, 10, 15 and the last.
        #expect(lines.filter { $0["accuracy.accuracy"] != nil }.map { $0["step"] as! Int } == [5, 10, 15, 16])
        // It is the accuracy of the classifier (running statistics) on all 256 test items.
        let c = stage(p, "C", as: ClassifierStage.self)
        let test = stage(p, "test", as: IDXDatasetStage.self)
        let (images, labels) = try test.items(0..<256)
        let predicted = ClassScores.argmax(try withoutGradients { try c.classifier.forward(images, mode: .eval) })
        let expected = Double(zip(predicted, labels!).filter { $0 == $1 }.count) / 256
        let reported = try #require(summary.finalScalars["accuracy.accuracy"])
        #expect(abs(reported - expected) < 1e-6)
        #expect(summary.finalScalars["accuracy.loss"]!.isFinite)
        #expect(summary.finalScalars["loss.accuracy"] == nil, "nothing asks the loss for its batch accuracy")
    }

    @Test func lossStageGivesCrossEntropyAndBatchAccuracy() throws {
        let p = try pipeline(stages: Self.stages(), schedule: #"[{ "run": "opt" }]"#)
        let logits = try Tensor(shape: [32, 10], scalars: (0..<320).map { Float(($0 * 7) % 10) })
        let labels = try Tensor(shape: [32], scalars: (0..<32).map { Float($0 % 10) })
        let out = try stage(p, "loss", as: CrossEntropyLossStage.self).run(["loss", "accuracy"],
                                                                        inputs: ["logits": .tensor(logits), "labels": .tensor(labels)])
        #expect(out["loss"]?.number.map { Float($0) } == (try Tensor.crossEntropy(logits, labels: labels)).item())
        // Row i holds (7 (10 i + j)) mod 10 = 7 j mod 10 at column j: its largest logit, 9, is at j = 7 for every row.
        let hits = (0..<32).filter { $0 % 10 == 7 }.count
        #expect(out["accuracy"]?.number == Double(Float(hits) / 32))
    }

    @Test func exportedWeightsLoadIntoTheFeatureExtractor() throws {
        let dir = temporaryDirectory("classifier-export")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try pipeline(stages: Self.stages(), schedule: #"[{ "run": "opt" }]"#, steps: 2)
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        _ = try Runner(pipeline: p, options: options).run()
        // As `ganflow export RUN --stage C` does it.
        let file = dir + "/c.safetensors"
        try TrainedRun(dir).stateDict(stage: "C", ema: false).write(to: file)
        let extractor = try FeatureExtractor(weights: file, size: 28)
        #expect(extractor.dimension == 16 && extractor.classes == 10 && extractor.channels == 1)
        let (images, _) = try stage(p, "test", as: IDXDatasetStage.self).items(0..<20)
        let c = stage(p, "C", as: ClassifierStage.self)
        let logits = try withoutGradients { try c.classifier.forward(images, mode: .eval) }
        let (features, extracted) = try extractor(images)
        #expect(features.shape == [20, 16])
        #expect(extracted.scalars == logits.scalars)
        // Padded to 32 (as GAN pipelines serve Fashion-MNIST), the centre crop gives the same logits.
        let (_, fromPadded) = try extractor(try images.padded(spatial: 2))
        #expect(fromPadded.scalars == logits.scalars)
    }

    @Test func paddedImagesAreCroppedBack() throws {
        var rng = PhiloxRandom(seed: 3)
        let images = Tensor(randomUniform: [2, 1, 28, 28], low: -1, high: 1, using: &rng)
        let padded = try images.padded(spatial: 2)
        #expect(padded.shape == [2, 1, 32, 32])
        #expect(try FeatureExtractor.adapted(padded, channels: 1, size: 28).scalars == images.scalars)
        // RGB to gray by the channel mean; smaller images padded with black.
        let rgb = try Tensor(shape: [1, 3, 1, 1], scalars: [0.3, -0.6, 0.9])
        let gray = try FeatureExtractor.adapted(rgb, channels: 1, size: 3).scalars
        #expect(gray.count == 9 && abs(gray[4] - 0.2) < 1e-6)
        #expect(gray.enumerated().allSatisfy { $0.offset == 4 || $0.element == -1 })
    }

    @Test func problemsAreReported() throws {
        let noLabels = Self.stages().replacingOccurrences(of: #""test": { "type": "dataset.idx", "images": "\#(Self.images)", "labels": "\#(Self.labels)","#,
                                                          with: #""test": { "type": "dataset.idx", "images": "\#(Self.images)","#)
        #expect(problems(stages: noLabels) == ["$.stages.accuracy.data: dataset 'test' has no labels (give its 'labels' file)"])
        let wrongRef = Self.stages().replacingOccurrences(of: #""classifier": "C""#, with: #""classifier": "loss""#)
        #expect(problems(stages: wrongRef) == ["$.stages.accuracy.classifier: stage 'loss' is not a classifier (classifier.cnn)"])
        let badLabels = Self.stages().replacingOccurrences(of: #""labels": "data.labels""#, with: #""labels": "C.logits""#)
        #expect(problems(stages: badLabels) == ["$.stages.loss.labels: expected labels [32] for logits [32, 10], found tensor [32, 10]"])
    }
}
