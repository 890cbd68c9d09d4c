import PipelineGraph
import TensorRuntime

/// What `loss.content` and `loss.style` share: inputs that are feature pyramids (or single
/// tensors), and one weight per level.
enum FeatureLossSupport {
    static func keys(_ input: String, _ target: String) -> [ConfigKey] {
        [
            ConfigKey("input", .wire, input),
            ConfigKey("target", .wire, target),
            ConfigKey("weights", .numberList(), default: .null, "Weight of each level (layer) of the pyramids; null: 1 / levels each."),
        ]
    }

    /// The shapes of a pyramid or tensor port, level by level.
    static func levels(_ type: PortType?, key: String) throws -> [[Int]] {
        switch type {
        case .pyramid(let shapes)?: return shapes
        case .tensor(let shape)?: return [shape]
        default:
            throw StageProblem(key: key, "expected feature maps (a pyramid from a features stage, or a tensor), found \(type.map { "\($0)" } ?? "nothing")")
        }
    }

    /// The per-level weights from the config, checked against the number of levels.
    static func weights(_ config: StageConfig, levels: Int) throws -> [Float] {
        guard !config.isNull("weights") else { return [Float](repeating: 1 / Float(levels), count: levels) }
        let w = config.doubles("weights").map(Float.init)
        guard w.count == levels else {
            throw StageProblem(key: "weights", "\(w.count) weights for \(levels) levels; give one per layer of the input")
        }
        return w
    }

    /// The values of a pyramid or tensor input.
    static func values(_ e: Evaluation, _ port: String) throws -> [Tensor] {
        if case .pyramid(let ts)? = e.inputs[port] { return ts }
        return [try e.tensor(port)]
    }
}
