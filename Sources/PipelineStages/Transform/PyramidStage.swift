import PipelineGraph
import TensorRuntime

/// The same image batch at every scale, by repeated 2x area downsampling (MSG-GAN's real pyramid).
///
///     "real": { "type": "transform.pyramid", "input": "data.images", "smallest": 4 }
///
/// Output `pyramid`: `[N, C, s, s]` for s = smallest, 2 * smallest, ..., the input's side, coarsest first.
/// Differentiable, so it also serves generated images.
public final class PyramidStage: Stage, @unchecked Sendable {
    public static let typeName = "transform.pyramid"
    public static let summary = "An image batch at every halving of its size (area downsampling); output 'pyramid', coarsest first."
    public static let configKeys: [ConfigKey] = [
        ConfigKey("input", .wire, "Square images [N, C, H, H]."),
        ConfigKey("smallest", .int(min: 1), default: .number(4), "Side of the coarsest scale."),
    ]

    let smallest: Int
    public let outputs: [String: PortType]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        smallest = config.int("smallest")
        outputs = try PyramidStage.types(inputs, smallest: smallest)
    }

    static func types(_ inputs: [String: PortType], smallest: Int) throws -> [String: PortType] {
        guard let s = inputs["input"]?.shape, s.count == 4 else {
            throw StageProblem(key: "input", "expected images [N, C, H, W], found \(inputs["input"].map { "\($0)" } ?? "nothing")")
        }
        let sides = try DatasetCore.pyramidSides(height: s[2], width: s[3], smallest: smallest, key: "smallest")
        return ["pyramid": .pyramid(sides.map { [s[0], s[1], $0, $0] })]
    }

    public func outputTypes(for inputs: [String: PortType]) throws -> [String: PortType] {
        try PyramidStage.types(inputs, smallest: smallest)
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let x = try e.tensor("input")
        var levels = [x]
        while levels[0].shape[2] > smallest {
            levels.insert(try levels[0].downsampleArea(factor: 2), at: 0)
        }
        return ["pyramid": .pyramid(levels)]
    }
}
