import GANFlowTestSupport
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

@Suite struct StyleTransferLossTests {
    @Test func gramMatrixIsNormalisedByTheNumberOfPositions() throws {
        // F = [[1, 2], [3, 4]] (2 channels, 1x2 positions): F F^T = [[5, 11], [11, 25]], / 2.
        let f = try Tensor(shape: [1, 2, 1, 2], scalars: [1, 2, 3, 4])
        let g = try StyleLossStage.gramMatrix(f)
        #expect(g.shape == [1, 2, 2])
        #expect(g.scalars == [2.5, 5.5, 5.5, 12.5])
    }

    @Test func contentLossByHandAndItsGradient() throws {
        let x = try Tensor(shape: [1, 1, 2, 2], scalars: [1, 2, 3, 4])
        let t = try Tensor(shape: [1, 1, 2, 2], scalars: [0, 2, 1, 4])
        let y = try Tensor(shape: [1, 2, 1, 1], scalars: [1, 1])
        let u = try Tensor(shape: [1, 2, 1, 1], scalars: [2, -1])
        // Level 0: (1 + 0 + 4 + 0) / 4 = 1.25; level 1: (1 + 4) / 2 = 2.5.
        #expect(try ContentLossStage.loss([x, y], [t, u], weights: [2, 0.5]).item() == 2 * 1.25 + 0.5 * 2.5)
        var rng = PhiloxRandom(seed: 3)
        let a = Tensor(randomNormal: [1, 3, 2, 3], using: &rng), b = Tensor(randomNormal: [1, 3, 2, 3], using: &rng)
        #expect(try GradientCheck.firstOrderError([a, b]) { try ContentLossStage.loss([$0[0]], [$0[1]], weights: [0.7]) } < 1e-3)
    }

    @Test func styleLossByHandAndItsGradient() throws {
        // G(x) = [[2.5, 5.5], [5.5, 12.5]]; target F = [[1, 0], [0, 1]] so G(t) = [[0.5, 0], [0, 0.5]].
        // Differences 2, 5.5, 5.5, 12: squares 4 + 30.25 + 30.25 + 144 = 208.5, mean 52.125.
        let x = try Tensor(shape: [1, 2, 1, 2], scalars: [1, 2, 3, 4])
        let t = try Tensor(shape: [1, 2, 1, 2], scalars: [1, 0, 0, 1])
        #expect(try StyleLossStage.loss([x], [t], weights: [2]).item() == 2 * 52.125)
        // A target of another size and a batch of 1 against a batch of 2.
        var rng = PhiloxRandom(seed: 5)
        let a = Tensor(randomNormal: [2, 3, 2, 2], using: &rng), s = Tensor(randomNormal: [1, 3, 3, 4], using: &rng)
        let b = Tensor(randomNormal: [2, 2, 2, 3], using: &rng), r = Tensor(randomNormal: [1, 2, 2, 2], using: &rng)
        #expect(try GradientCheck.firstOrderError([a, b, s, r]) {
            try StyleLossStage.loss([$0[0], $0[1]], [$0[2], $0[3]], weights: [1, 0.5])
        } < 1e-3)
    }

    @Test func totalVariationByHandAndItsGradient() throws {
        // [[1, 3], [4, 8]]: vertical differences 3, 5; horizontal 2, 4.
        let x = try Tensor(shape: [1, 1, 2, 2], scalars: [1, 3, 4, 8])
        #expect(try TotalVariationLossStage.loss(x, squared: false, reduction: .sum).item() == 14)
        #expect(try TotalVariationLossStage.loss(x, squared: true, reduction: .sum).item() == 54)
        #expect(try TotalVariationLossStage.loss(x, squared: false, reduction: .mean).item() == 4 + 3)
        // Values 0.3 * (7 i mod 24): no two neighbours are equal, so |d| is smooth around them.
        let a = try Tensor(shape: [1, 2, 3, 4], scalars: (0..<24).map { Float((7 * $0) % 24) * 0.3 })
        for squared in [false, true] {
            for reduction in [Reduction.sum, .mean] {
                #expect(try GradientCheck.firstOrderError([a]) {
                    try TotalVariationLossStage.loss($0[0], squared: squared, reduction: reduction)
                } < 1e-3)
            }
        }
    }

    @Test func weightedSumAndItsErrors() throws {
        let stages = """
        "a": { "type": "test.constant", "value": 2 },
        "b": { "type": "test.constant", "value": 5 },
        "sum": { "type": "loss.sum", "inputs": { "x": "a.value", "y": "b.value" }, "weights": { "x": 3 } }
        """
        let p = try buildPipeline(stages, consume: "sum.loss")
        let out = try p.stage("sum").run(["loss"], inputs: ["x": .scalar(Tensor(2)), "y": .scalar(Tensor(5))])
        #expect(out["loss"]!.tensor!.item() == 3 * 2 + 5)
        #expect(buildProblems(stages.replacingOccurrences(of: #""x": 3"#, with: #""z": 3"#), consume: "sum.loss") == [
            "$.stages.sum.weights: no input 'z' to weigh",
        ])
        #expect(buildProblems(stages.replacingOccurrences(of: #""x": 3"#, with: #""yy": 3"#), consume: "sum.loss") == [
            "$.stages.sum.weights: no input 'yy' to weigh (did you mean 'y'?)",
        ])
    }

    @Test func featureLossesCheckTheirInputs() throws {
        let stages = """
        "c": { "type": "image.load", "path": "Fixtures/photos/content/chelsea.png", "size": 32 },
        "s": { "type": "image.load", "path": "Fixtures/photos/style/brick.png", "size": 32, "fit": "square" },
        "F": { "type": "features.random", "width": 2, "inputs": { "c": "c.image", "s": "s.image" } },
        "l": { "type": "loss.content", "input": "F.c_content", "target": "F.s_content" }
        """
        #expect(buildProblems(stages, consume: "l.loss") == [
            "$.stages.l.target: target features pyramid [1, 16, 4, 4] do not match input features pyramid [1, 16, 2, 4]",
        ])
        let style = stages.replacingOccurrences(of: #""type": "loss.content""#, with: #""type": "loss.style", "weights": [1, 2]"#)
        #expect(buildProblems(style, consume: "l.loss") == ["$.stages.l.weights: 2 weights for 1 levels; give one per layer of the input"])
    }
}

/// A constant scalar, to feed losses in tests.
final class ConstantStage: Stage, @unchecked Sendable {
    static let typeName = "test.constant"
    static let summary = "A constant scalar."
    static let configKeys = [ConfigKey("value", .number(), "The value.")]
    let value: Float
    let outputs: [String: PortType] = ["value": .scalar]
    init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws { value = config.float("value") }
    func evaluate(_ e: Evaluation) throws -> [String: PortValue] { ["value": .scalar(Tensor(value))] }
}
