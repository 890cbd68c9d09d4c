import PipelineGraph
import TensorRuntime

/// How well the coarse scales of a pyramid agree with its finest one: for each coarser scale, the
/// mean squared difference between that image and the finest image average-pooled to its size,
/// relative to the pooled image's own variance (per image, averaged over the batch).
///
///     "consistency": { "type": "metric.pyramid", "input": "G.pyramid", "every": 100 }
///
/// Outputs `scale4`, `scale8`, ... (one per scale below the finest). A real pyramid (a dataset's
/// `pyramid`) scores 0 exactly; 1 means the coarse image is no closer to the pooled fine one than
/// a flat image of the right mean; about 2, that the two are unrelated. MSG-GAN's promise is that
/// every scale shows the same object, so these should fall towards 0 as training goes.
///
/// With `critic` (an MSG discriminator's stage id) it also outputs `grad<side>` for every scale:
/// the norm of the gradient of D's score with respect to that scale's image, averaged over the
/// batch. That is the signal the generator's image at that scale receives; a scale D ignores
/// gets a small one.
public final class PyramidConsistencyMetricStage: Stage, @unchecked Sendable {
    public static let typeName = "metric.pyramid"
    public static let summary = "Disagreement of each coarse scale of a pyramid with its finest scale average-pooled; outputs 'scale<side>'."
    public static let scalarKind = ScalarKind.measurement
    public static let configKeys: [ConfigKey] = [
        ConfigKey("input", .wire, "A pyramid of images (a generator.msg's 'pyramid'), coarsest first."),
        ConfigKey("critic", .stageRef, default: .null, "An MSG discriminator: also output D's gradient norm at every scale."),
    ]

    public let outputs: [String: PortType]
    let sides: [Int]
    let critic: (any PyramidCriticStage)?

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        guard case .pyramid(let scales)? = inputs["input"], let finest = scales.last else {
            throw StageProblem(key: "input", "expected a pyramid of images (a generator.msg's 'pyramid'), found \(inputs["input"].map { "\($0)" } ?? "nothing")")
        }
        guard scales.count >= 2 else { throw StageProblem(key: "input", "a pyramid of one scale has nothing to compare") }
        for (i, s) in scales.enumerated() {
            guard s.count == 4, s[0] == finest[0], s[1] == finest[1], s[2] == s[3], s[2] > 0, finest[2] % s[2] == 0 else {
                throw StageProblem(key: "input", "scale \(i) is \(describe(s)); each scale must be square images [N, C, s, s] dividing the finest \(describe(finest))")
            }
        }
        sides = scales.dropLast().map { $0[2] }
        var out: [String: PortType] = ["measured": .effect]
        for side in sides { out["scale\(side)"] = .scalar }
        if let id = config.optionalString("critic") {
            guard let c = context.stage(id) as? any PyramidCriticStage else {
                throw StageProblem(key: "critic", "stage '\(id)' is not a discriminator of pyramids (discriminator.msg)")
            }
            critic = c
            for side in scales.map({ $0[2] }) { out["grad\(side)"] = .scalar }
        } else {
            critic = nil
        }
        outputs = out
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let levels = try e.pyramid("input")
        let finest = levels.last!
        var out: [String: PortValue] = ["measured": .effect]
        try withoutGradients {
            // Pooled scale by scale from the finest, as a dataset's pyramid is, so a real one scores 0 exactly.
            var pooled = finest
            for (level, side) in zip(levels, sides).reversed() {
                pooled = try MetricInputs.measuring { try pooled.downsampleArea(factor: pooled.shape[2] / side) }
                out["scale\(side)"] = .scalar(Tensor(Float(Self.disagreement(level.scalars, pooled.scalars, batch: finest.shape[0]))))
            }
        }
        if let critic {
            let points = levels.map { $0.detached().copy().requiringGradients() }
            let grads = try GradMode.with(enabled: true) {
                try MetricInputs.measuring { try gradients(of: try critic.critic(pyramid: points).sum(), wrt: points) }
            }
            try withoutGradients {
                for (g, level) in zip(grads, levels) {
                    out["grad\(level.shape[2])"] = .scalar(try MetricInputs.measuring { try GradientPenalty.norms(g).mean() })
                }
            }
        }
        return out
    }

    /// Mean over the batch of |a - b|^2 / |b - mean(b)|^2, image by image (a flat `b` counts as a
    /// variance of 1e-12 so that the value stays finite).
    static func disagreement(_ a: [Float], _ b: [Float], batch: Int) -> Double {
        let n = b.count / batch
        var total = 0.0
        for i in 0..<batch {
            let range = i * n..<(i + 1) * n
            var mean = 0.0
            for j in range { mean += Double(b[j]) }
            mean /= Double(n)
            var diff = 0.0, variance = 0.0
            for j in range {
                diff += (Double(a[j]) - Double(b[j])) * (Double(a[j]) - Double(b[j]))
                variance += (Double(b[j]) - mean) * (Double(b[j]) - mean)
            }
            total += diff / max(variance, 1e-12)
        }
        return total / Double(batch)
    }
}
