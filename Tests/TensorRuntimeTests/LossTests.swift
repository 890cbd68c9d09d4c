import Foundation
import Testing
import TensorRuntime
import GANFlowTestSupport

@Suite struct LossTests {
    /// -[t log s + (1 - t) log(1 - s)] with s = sigmoid(x), in Double (fine for moderate x).
    static func naiveBCE(_ x: Float, _ t: Float) -> Double {
        let s = 1 / (1 + Foundation.exp(-Double(x)))
        return -(Double(t) * Foundation.log(s) + (1 - Double(t)) * Foundation.log(1 - s))
    }

    @Test func binaryCrossEntropyMatchesDefinition() throws {
        let xs: [Float] = [-8, -2.5, -0.3, 0, 0.4, 1.7, 6]
        let ts: [Float] = [0, 1, 0.3, 1, 0, 0.9, 1]
        let x = try Tensor(shape: [7], scalars: xs), t = try Tensor(shape: [7], scalars: ts)
        let reference = zip(xs, ts).map { Self.naiveBCE($0, $1) }
        let none = try Tensor.binaryCrossEntropyWithLogits(x, t, reduction: .none)
        #expect(none.shape == [7])
        #expect(OpsCheck.maxRelativeError(none.scalars, reference) < 1e-6)
        let mean = try Tensor.binaryCrossEntropyWithLogits(x, t)
        #expect(mean.shape == [])
        #expect(OpsCheck.maxRelativeError([mean.item()], [reference.reduce(0, +) / 7]) < 1e-6)
        let sum = try Tensor.binaryCrossEntropyWithLogits(x, t, reduction: .sum)
        #expect(OpsCheck.maxRelativeError([sum.item()], [reference.reduce(0, +)]) < 1e-6)
    }

    @Test func binaryCrossEntropyIsStableForLargeLogits() throws {
        let x = try Tensor(shape: [4], scalars: [-200, 200, 100, -100])
        let t = try Tensor(shape: [4], scalars: [1, 0, 1, 0])
        let loss = try Tensor.binaryCrossEntropyWithLogits(x, t, reduction: .none).scalars
        // Wrong and confident: the loss is |x|; right and confident: about e^-|x|, not 0 - 0 = NaN.
        #expect(loss[0] == 200 && loss[1] == 200)
        #expect(loss[2] >= 0 && loss[2] < Float.leastNormalMagnitude && loss[3] >= 0 && loss[3] < Float.leastNormalMagnitude)
        x.requiringGradients()
        let g = try gradients(of: try Tensor.binaryCrossEntropyWithLogits(x, t, reduction: .sum), wrt: [x])[0]
        let gv = g.scalars
        #expect(gv[0] == -1 && gv[1] == 1 && gv[2] == 0)
        #expect(gv[3] >= 0 && gv[3] < Float.leastNormalMagnitude)
    }

    @Test func regressionLossesMatchNaive() throws {
        var rng = PhiloxRandom(seed: 41)
        let p = Tensor(randomNormal: [3, 5], using: &rng), t = Tensor(randomNormal: [3, 5], using: &rng)
        let diffs = zip(p.scalars, t.scalars).map { Double($0) - Double($1) }
        #expect(OpsCheck.maxRelativeError(
            try Tensor.meanSquaredError(p, t, reduction: .none).scalars, diffs.map { $0 * $0 }) < 1e-6)
        #expect(OpsCheck.maxRelativeError(
            [try Tensor.meanSquaredError(p, t).item()], [diffs.map { $0 * $0 }.reduce(0, +) / 15]) < 1e-6)
        #expect(OpsCheck.maxRelativeError(
            [try Tensor.l1Loss(p, t, reduction: .sum).item()], [diffs.map { Swift.abs($0) }.reduce(0, +)]) < 1e-6)
        #expect(OpsCheck.maxRelativeError(
            [try Tensor.l1Loss(p, t).item()], [diffs.map { Swift.abs($0) }.reduce(0, +) / 15]) < 1e-6)
    }

    @Test func firstOrderGradients() throws {
        var rng = PhiloxRandom(seed: 42)
        let x = Tensor(randomNormal: [2, 3], std: 2, using: &rng)
        let t = Tensor(randomUniform: [2, 3], using: &rng)
        let cases: [(String, ([Tensor]) throws -> Tensor)] = [
            ("bce", { v in try Tensor.binaryCrossEntropyWithLogits(v[0], v[1]) }),
            ("bce sum", { v in try Tensor.binaryCrossEntropyWithLogits(v[0], v[1], reduction: .sum) }),
            ("mse", { v in try Tensor.meanSquaredError(v[0], v[1]) }),
            ("l1", { v in try Tensor.l1Loss(v[0], v[1], reduction: .sum) }),
        ]
        for (name, f) in cases {
            let err = try GradientCheck.firstOrderError([x.copy(), t.copy()], f)
            #expect(err < 1e-2, "\(name): \(err)")
        }
    }

    @Test func secondOrderGradients() throws {
        var rng = PhiloxRandom(seed: 43)
        let x = Tensor(randomNormal: [2, 3], std: 2, using: &rng)
        let t = Tensor(randomUniform: [2, 3], using: &rng)
        let cases: [(String, ([Tensor]) throws -> Tensor)] = [
            ("bce", { v in try Tensor.binaryCrossEntropyWithLogits(v[0], v[1], reduction: .sum) }),
            // The targets' gradient -x times x's: a mixed second derivative.
            ("bce mixed", { v in try Tensor.binaryCrossEntropyWithLogits(try v[0] * v[1], v[1]) }),
            ("mse", { v in try Tensor.meanSquaredError(v[0].tanh(), v[1]) }),
            ("l1", { v in try Tensor.l1Loss(v[0].pow(3), v[1], reduction: .sum) }),
        ]
        for (name, f) in cases {
            let err = try GradientCheck.secondOrderError([x.copy(), t.copy()], f)
            #expect(err < 2e-2, "\(name): \(err)")
        }
    }

    @Test func gradientPenaltyThroughBCE() throws {
        // R1-style: the squared norm of dL/dx, differentiated again with respect to x.
        var rng = PhiloxRandom(seed: 44)
        let x = Tensor(randomNormal: [4], using: &rng)
        let err = try GradientCheck.firstOrderError([x]) { v in
            let logits = (v[0] * 1.5).tanh() * 3
            let loss = try Tensor.binaryCrossEntropyWithLogits(logits, Tensor(repeating: 1, shape: [4]))
            let g = try gradients(of: loss, wrt: [v[0]], createGraph: true)[0]
            return g.square().sum()
        }
        #expect(err < 1e-2)
    }

    @Test func mismatchedShapesAreErrors() {
        let a = Tensor(zeros: [64, 1]), b = Tensor(zeros: [64])
        #expect(throws: TensorError("binaryCrossEntropyWithLogits: shapes [64, 1] and [64] do not match")) {
            try Tensor.binaryCrossEntropyWithLogits(a, b)
        }
        #expect(throws: TensorError("meanSquaredError: shapes [64, 1] and [64] do not match")) {
            try Tensor.meanSquaredError(a, b)
        }
        #expect(throws: TensorError("l1Loss: shapes [64, 1] and [64] do not match")) {
            try Tensor.l1Loss(a, b)
        }
    }
}
