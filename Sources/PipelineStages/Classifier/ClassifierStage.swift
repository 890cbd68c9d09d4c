import NeuralNet
import PipelineGraph
import TensorRuntime

/// A small CNN image classifier (`ConvClassifier`): images [N, C, H, W] to logits [N, classes].
///
///     "C": { "type": "classifier.cnn", "input": "data.images" }
///
/// Trained like any model stage (a `loss.crossentropy` and an optimizer); `metric.accuracy` scores
/// it on a whole dataset, and `ganflow export --stage C` writes its weights for `features.classifier`.
/// Training evaluations use batch statistics; sample evaluations (sinks, metrics) use the running
/// ones, as PyTorch's `model.eval()`.
public final class ClassifierStage: NetworkBacked, @unchecked Sendable {
    public static let typeName = "classifier.cnn"
    public static let summary = "Small CNN classifier (3 strided convolutions with batch norm, hidden linear layer); output 'logits'."
    public static let configKeys: [ConfigKey] = ModelKeys.wiring(single: "logits") + ClassifierShape.keys

    public let core: NetworkCore
    public let outputs: [String: PortType]
    public let classifier: ConvClassifier

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        try ModelKeys.checkWiring(config)
        let ports = NetworkCore.ports(config, single: "logits")
        guard let first = inputs[ports[0].input]?.shape, first.count == 4, first[2] == first[3] else {
            throw StageProblem(key: ports[0].input, "expected square images [N, C, H, W], found \(inputs[ports[0].input]!)")
        }
        var rng = ModelKeys.initRandom(config, context)
        classifier = try ClassifierShape(config).make(channels: first[1], size: first[2], key: ports[0].input, rng: &rng)
        core = NetworkCore(net: classifier, ports: ports, sameShapes: false, context: context)
        outputs = try core.outputTypes(inputs)
    }

    public var hasMovingAverage: Bool { false }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        if e.mode == .train { return try core.evaluate(e) }
        var out: [String: PortValue] = [:]
        for (input, output) in core.ports where e.outputs.contains(output) {
            out[output] = .tensor(try classifier.forward(try e.tensor(input), mode: .eval))
        }
        return out
    }
}

/// The architecture keys of `classifier.cnn`, shared with `features.classifier` (which must build
/// the same network to load its weights).
struct ClassifierShape {
    static let keys: [ConfigKey] = [
        ConfigKey("classes", .int(min: 2, max: 100_000), default: .number(10), "Number of classes."),
        ConfigKey("width", .int(min: 1, max: 1024), default: .number(32), "Feature maps of the first convolution; the next blocks have 2x, 2x and 4x."),
        ConfigKey("hidden", .int(min: 1, max: 65536), default: .number(128), "Width of the hidden linear layer, whose output is the feature space of the metrics."),
    ]

    var classes: Int
    var width: Int
    var hidden: Int

    init(_ config: StageConfig) {
        classes = config.int("classes")
        width = config.int("width")
        hidden = config.int("hidden")
    }

    func make(channels: Int, size: Int, key: String, rng: inout PhiloxRandom) throws -> ConvClassifier {
        do {
            return try ConvClassifier(channels: channels, size: size, classes: classes, width: width, hidden: hidden, rng: &rng)
        } catch let e as TensorError {
            throw StageProblem(key: key, e.message)
        }
    }
}
