import Foundation
import NeuralNet
import PipelineGraph
import PipelineStages
import Testing
import TensorRuntime
import GANFlowTestSupport

@Suite struct AdversarialLossTests {
    static let real = try! Tensor(shape: [3], scalars: [1, -2, 0.5])
    static let fake = try! Tensor(shape: [3], scalars: [0.5, 3, -1])

    /// Values worked out by hand (softplus and relu of these six numbers; see the comments).
    @Test func objectivesMatchHandValues() throws {
        let r = Self.real, f = Self.fake
        func close(_ t: Tensor, _ v: Double) -> Bool { abs(Double(t.item()) - v) < 1e-6 * max(1, abs(v)) }
        // mean softplus(-r) + mean softplus(f)
        #expect(close(try NonSaturatingLoss.discriminatorLoss(real: r, fake: f), 2.416730902004458))
        // BCE(r, 0.9) = softplus(r) - 0.9 r
        #expect(close(try NonSaturatingLoss.discriminatorLoss(real: r, fake: f, realLabel: 0.9), 2.400064235337791))
        #expect(close(try NonSaturatingLoss.generatorLoss(real: nil, fake: f), 0.6119753410906905))
        #expect(close(try MinimaxLoss.generatorLoss(real: nil, fake: f), -1.4453086744240238))
        // ((0 + 9 + 0.25) / 3 + (0.25 + 9 + 1) / 3) / 2 and (0.25 + 4 + 4) / 3 / 2
        #expect(close(try LeastSquaresLoss.discriminatorLoss(real: r, fake: f), 3.25))
        #expect(close(try LeastSquaresLoss.generatorLoss(real: nil, fake: f), 1.375))
        // (0 + 3 + 0.5) / 3 + (1.5 + 4 + 0) / 3
        #expect(close(try HingeLoss.discriminatorLoss(real: r, fake: f), 3))
        #expect(close(try HingeLoss.generatorLoss(real: nil, fake: f), -2.5 / 3))
        // mean f - mean r = 2.5/3 + 0.5/3
        #expect(close(try WassersteinLoss.discriminatorLoss(real: r, fake: f), 1))
        #expect(close(try WGANGPLoss.generatorLoss(real: nil, fake: f), -2.5 / 3))
        // r - mean f = [1/6, -17/6, -1/3], f - mean r = [2/3, 19/6, -5/6]
        #expect(close(try RelativisticAverageLoss.discriminatorLoss(real: r, fake: f), 3.00909142104003))
        #expect(close(try RelativisticAverageLoss.discriminatorLoss(real: r, fake: f, realLabel: 0.9), 2.90909142104003))
        #expect(close(try RelativisticAverageLoss.generatorLoss(real: r, fake: f), 1.0090914210400301))
        // relu(1 - [1/6, -17/6, -1/3]) = [5/6, 23/6, 4/3], relu(1 + [2/3, 19/6, -5/6]) = [5/3, 25/6, 1/6]
        #expect(close(try RelativisticHingeLoss.discriminatorLoss(real: r, fake: f), 4))
        #expect(close(try RelativisticHingeLoss.generatorLoss(real: r, fake: f), 4 / 3))
    }

    @Test func relativisticGeneratorLossesNeedRealOutputs() {
        #expect(throws: TensorError("loss.rasgan: the generator's loss needs D's output on real images")) {
            try RelativisticAverageLoss.generatorLoss(real: nil, fake: Self.fake)
        }
    }
}

@Suite struct GradientPenaltyTests {
    /// A smooth critic: Linear(4, 3), tanh, Linear(3, 1), one value per sample.
    static func smoothCritic(_ seed: UInt64) throws -> Sequential {
        var rng = PhiloxRandom(seed: seed)
        return Sequential([try Linear(4, 3, rng: &rng), Activation(.tanh), try Linear(3, 1, rng: &rng), Reshape([])])
    }

    /// D's input gradient for each sample by central differences (Double accumulation).
    static func numericInputGradients(_ critic: (Tensor) throws -> Tensor, at x: Tensor, eps: Float = 1e-2) throws -> [[Double]] {
        let n = x.shape[0], d = x.count / n
        var out = [[Double]](repeating: [Double](repeating: 0, count: d), count: n)
        for i in 0..<n {
            for j in 0..<d {
                let saved = x.data[i * d + j]
                x.data[i * d + j] = saved + eps
                let up = try critic(x).scalars[i]
                x.data[i * d + j] = saved - eps
                let down = try critic(x).scalars[i]
                x.data[i * d + j] = saved
                out[i][j] = (Double(up) - Double(down)) / (2 * Double(eps))
            }
        }
        return out
    }

    static func norm(_ v: [Double]) -> Double { v.map { $0 * $0 }.reduce(0, +).squareRoot() }

    @Test func wgangpOnHandChosenCritics() throws {
        let real = try Tensor(shape: [2, 2], scalars: [1, 2, 0, -1]), fake = try Tensor(shape: [2, 2], scalars: [3, 0, 2, 2])
        let epsilon = try Tensor(shape: [2], scalars: [0.25, 0.5])
        // D(x) = x . (0.6, 0.3): the gradient is that vector everywhere, (||g|| - 1)^2 = (sqrt(0.45) - 1)^2.
        let w = try Tensor(shape: [2, 1], scalars: [0.6, 0.3])
        let linear = try GradientPenalty.wgangp(critic: { try matmul($0, w).reshaped([2]) }, real: real, fake: fake, epsilon: epsilon)
        #expect(abs(Double(linear.item()) - pow(0.45.squareRoot() - 1, 2)) < 1e-6)
        // D(x) = |x|^2 / 2: the gradient is x^ itself; x^ = (2.5, 0.5) and (1, 0.5).
        let square = try GradientPenalty.wgangp(critic: { try ($0.square().sum(axes: [1])) * 0.5 }, real: real, fake: fake, epsilon: epsilon)
        let expected = (pow(6.5.squareRoot() - 1, 2) + pow(1.25.squareRoot() - 1, 2)) / 2
        #expect(abs(Double(square.item()) - expected) < 1e-6)
    }

    @Test func wgangpAgainstFiniteDifferences() throws {
        let critic = try Self.smoothCritic(1)
        var rng = PhiloxRandom(seed: 2)
        let real = Tensor(randomNormal: [3, 4], using: &rng), fake = Tensor(randomNormal: [3, 4], using: &rng)
        let epsilon = Tensor(randomUniform: [3], using: &rng)
        let d: (Tensor) throws -> Tensor = { try critic.forward($0, mode: .train) }
        let penalty = try GradientPenalty.wgangp(critic: d, real: real, fake: fake, epsilon: epsilon)

        let e = epsilon.scalars
        let point = try Tensor(shape: [3, 4], scalars: (0..<12).map { e[$0 / 4] * real.scalars[$0] + (1 - e[$0 / 4]) * fake.scalars[$0] })
        let grads = try Self.numericInputGradients(d, at: point)
        let numeric = grads.map { pow(Self.norm($0) - 1, 2) }.reduce(0, +) / 3
        #expect(abs(Double(penalty.item()) - numeric) < 1e-3 * max(1, numeric))

        // Its gradient for the critic's weights is second order (through createGraph).
        let params = critic.namedParameters.map(\.1)
        let err = try GradientCheck.firstOrderError(params, epsilon: 1e-2) { _ in
            try GradientPenalty.wgangp(critic: d, real: real, fake: fake, epsilon: epsilon)
        }
        #expect(err < 1e-2)
    }

    @Test func r1OnAHandChosenCriticAndAgainstFiniteDifferences() throws {
        let real = try Tensor(shape: [2, 2], scalars: [1, 2, 0, -1])
        // D(x) = |x|^2 / 2: grad = x, E||x||^2 = (5 + 1) / 2.
        let square = try GradientPenalty.r1(critic: { try ($0.square().sum(axes: [1])) * 0.5 }, real: real)
        #expect(abs(square.item() - 3) < 1e-6)

        let critic = try Self.smoothCritic(3)
        var rng = PhiloxRandom(seed: 4)
        let x = Tensor(randomNormal: [3, 4], using: &rng)
        let d: (Tensor) throws -> Tensor = { try critic.forward($0, mode: .train) }
        let penalty = try GradientPenalty.r1(critic: d, real: x)
        let numeric = try Self.numericInputGradients(d, at: x.copy()).map { pow(Self.norm($0), 2) }.reduce(0, +) / 3
        #expect(abs(Double(penalty.item()) - numeric) < 1e-3 * max(1, numeric))
        let err = try GradientCheck.firstOrderError(critic.namedParameters.map(\.1), epsilon: 1e-2) { _ in
            try GradientPenalty.r1(critic: d, real: x)
        }
        #expect(err < 1e-2)
    }
}

@Suite struct PenaltyStageTests {
    static func stages(_ loss: String) -> String {
        """
        "z": { "type": "noise.normal", "batch": 3, "dim": 4 },
        "data": { "type": "test.images", "batch": 3, "size": 4 },
        "G": { "type": "generator.mlp", "input": "z.samples", "hidden": [8], "size": 4, "norm": "none" },
        "D": { "type": "discriminator.mlp", "inputs": { "real": "data.images", "fake": "G.images" }, "hidden": [6] },
        "loss": { \(loss), "real": "D.real", "fake": "D.fake" },
        "optD": { "type": "optimizer.adam", "minimize": "loss.discriminator", "parameters": "D" },
        "optG": { "type": "optimizer.adam", "minimize": "loss.generator", "parameters": "G" }
        """
    }

    func evaluate(_ p: Pipeline, index: Int) throws -> (loss: Float, penalty: Float?, real: Tensor, fake: Tensor, images: Tensor, generated: Tensor) {
        let v = try Evaluator(pipeline: p, kind: .serial).evaluate(["loss": ["discriminator"]], step: index + 1, index: index, mode: .train)
        func t(_ s: String, _ port: String) -> Tensor { v[Wire(stage: s, port: port)]!.tensor! }
        return (t("loss", "discriminator").item(), v[Wire(stage: "loss", port: "penalty")]?.tensor?.item(), t("D", "real"), t("D", "fake"),
                t("data", "images"), t("G", "images"))
    }

    @Test func wgangpStageAddsLambdaTimesThePenaltyOnItsOwnInterpolates() throws {
        let p = try pipeline(stages: Self.stages(#""type": "loss.wgangp", "critic": "D", "realImages": "data.images", "fakeImages": "G.images""#))
        let r = try evaluate(p, index: 0)
        let base = r.fake.mean().item() - r.real.mean().item()
        let penalty = try #require(r.penalty)
        #expect(penalty > 0)
        #expect(abs(r.loss - (base + 10 * penalty)) < 1e-5 * max(1, abs(r.loss)))

        // The same epsilon stream, and D's input gradients by finite differences.
        var rng = Evaluation(outputs: [], inputs: [:], step: 1, index: 0, mode: .train, seed: 1, stageID: "loss").random("epsilon")
        let e = Tensor(randomUniform: [3], using: &rng).scalars
        let per = 16
        let point = try Tensor(shape: [3, 1, 4, 4], scalars: (0..<48).map {
            e[$0 / per] * r.images.scalars[$0] + (1 - e[$0 / per]) * r.generated.scalars[$0]
        })
        let d = stage(p, "D", as: MLPDiscriminatorStage.self)
        let grads = try GradientPenaltyTests.numericInputGradients({ try d.critic($0) }, at: point)
        let numeric = grads.map { pow(GradientPenaltyTests.norm($0) - 1, 2) }.reduce(0, +) / 3
        #expect(abs(Double(penalty) - numeric) < 1e-3 * max(1, numeric))
    }

    @Test func lazyR1IsWeightedByItsInterval() throws {
        let p = try pipeline(stages: Self.stages(#""type": "loss.nonsaturating", "penalty": "r1", "penaltyWeight": 4, "penaltyEvery": 2, "critic": "D", "realImages": "data.images""#))
        for index in 0..<3 {
            let r = try evaluate(p, index: index)
            let base = try NonSaturatingLoss.discriminatorLoss(real: r.real, fake: r.fake).item()
            let d = stage(p, "D", as: MLPDiscriminatorStage.self)
            let expected = try GradientPenalty.r1(critic: { try d.critic($0) }, real: r.images).item()
            if index % 2 == 0 {
                #expect(abs(try #require(r.penalty) - expected) < 1e-6 * max(1, expected))
                // gamma / 2 times the interval: 4 / 2 * 2.
                #expect(abs(r.loss - (base + 4 * expected)) < 1e-5 * max(1, abs(r.loss)))
            } else {
                #expect(r.loss == base)
            }
        }
    }

    @Test func driftKeepsTheCriticNearZero() throws {
        let p = try pipeline(stages: Self.stages(#""type": "loss.wasserstein", "drift": 0.001"#))
        let r = try evaluate(p, index: 0)
        let expected = r.fake.mean().item() - r.real.mean().item() + 0.001 * r.real.square().mean().item()
        #expect(abs(r.loss - expected) < 1e-6)
        #expect(r.penalty == nil, "no penalty, no 'penalty' output")
    }

    @Test func misconfiguredPenaltiesAreReported() {
        #expect(problems(stages: Self.stages(#""type": "loss.wgangp""#))
                == ["$.stages.loss.critic: penalty 'gp' needs the discriminator: set 'critic' to its stage id"])
        #expect(problems(stages: Self.stages(#""type": "loss.wgangp", "critic": "G", "realImages": "data.images""#))
                == ["$.stages.loss.critic: stage 'G' is not a discriminator"])
        #expect(problems(stages: Self.stages(#""type": "loss.wgangp", "critic": "D", "realImages": "data.images""#))
                == ["$.stages.loss.fakeImages: WGAN-GP needs 'fakeImages' (the generated images D saw)"])
        #expect(problems(stages: Self.stages(#""type": "loss.hinge", "penalty": "r1", "critic": "D""#))
                == ["$.stages.loss.realImages: penalty 'r1' needs 'realImages' (the images D saw)"])
        #expect(problems(stages: Self.stages(#""type": "loss.hinge", "labelSmoothing": 0.1"#))
                == ["$.stages.loss.labelSmoothing: loss.hinge has no labels to smooth; use a BCE loss (loss.nonsaturating, loss.minimax, loss.rasgan)"])
    }

    @Test func labelSmoothingAndInstanceNoiseTrain() throws {
        let text = Self.stages(#""type": "loss.nonsaturating", "labelSmoothing": 0.1"#)
            .replacingOccurrences(of: #""hidden": [6] }"#, with: #""hidden": [6], "instanceNoise": 0.1, "instanceNoiseSteps": 2 }"#)
        let p = try pipeline(stages: text)
        let e = Evaluator(pipeline: p, kind: .serial)
        // Step 1: D sees noisy images, so its outputs differ from the critic's on the clean ones.
        let v = try e.evaluate(["loss": ["discriminator"]], step: 1, index: 0, mode: .train)
        let d = stage(p, "D", as: MLPDiscriminatorStage.self)
        let clean = try d.critic(v[Wire(stage: "data", port: "images")]!.tensor!).scalars
        #expect(clean != v[Wire(stage: "D", port: "real")]!.tensor!.scalars)
        let smoothed = try NonSaturatingLoss.discriminatorLoss(real: v[Wire(stage: "D", port: "real")]!.tensor!,
                                                               fake: v[Wire(stage: "D", port: "fake")]!.tensor!, realLabel: 0.9)
        #expect(v[Wire(stage: "loss", port: "discriminator")]!.tensor!.item() == smoothed.item())
        // From step 3 the noise has decayed to nothing.
        let later = try e.evaluate(["D": ["real"]], step: 3, index: 5, mode: .train)
        #expect(try d.critic(later[Wire(stage: "data", port: "images")]!.tensor!).scalars == later[Wire(stage: "D", port: "real")]!.tensor!.scalars)
    }
}
