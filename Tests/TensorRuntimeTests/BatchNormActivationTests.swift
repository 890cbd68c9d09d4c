import Testing
import TensorRuntime
import GANFlowTestSupport

/// `batchNorm(..., leakySlope:)` against `batchNorm` followed by `leakyRelu` (or `relu` for slope
/// 0): the fused op must give the two ops' values and gradients, bit for bit where the arithmetic
/// is the same (forward and first-order backward), and the same higher-order gradients.
@Suite struct BatchNormActivationTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let shape: [Int]
        let slope: Float
        let training: Bool
        var testDescription: String { "\(shape) slope \(slope) \(training ? "training" : "eval")" }
    }

    static let cases: [Case] = [
        Case(shape: [4, 3, 5, 5], slope: 0.2, training: true),
        Case(shape: [4, 3, 5, 5], slope: 0, training: true),
        Case(shape: [6, 5], slope: 0.2, training: true),
        Case(shape: [6, 5], slope: 0, training: true),
        Case(shape: [4, 3, 2, 3], slope: 0.2, training: false),
    ]

    /// Leaves and running statistics for `c`, the same for both paths.
    static func operands(_ c: Case) -> (x: Tensor, w: Tensor, b: Tensor, rm: Tensor, rv: Tensor, r: Tensor) {
        var rng = PhiloxRandom(seed: 41)
        let k = c.shape[1]
        let x = Tensor(randomNormal: c.shape, mean: 0.3, std: 2, using: &rng)
        // Some negative scales: the activation's sign is not the input's.
        let w = Tensor(randomUniform: [k], low: -1.5, high: 1.5, using: &rng)
        let b = Tensor(randomNormal: [k], using: &rng)
        let rm = Tensor(randomNormal: [k], std: 0.3, using: &rng)
        let rv = Tensor(randomUniform: [k], low: 0.5, high: 1.5, using: &rng)
        let r = Tensor(randomNormal: c.shape, using: &rng)
        return (x, w, b, rm, rv, r)
    }

    static func separate(_ c: Case, _ x: Tensor, _ w: Tensor, _ b: Tensor, _ rm: Tensor?, _ rv: Tensor?) throws -> Tensor {
        let y = try x.batchNorm(weight: w, bias: b, runningMean: rm, runningVar: rv, training: c.training)
        return c.slope == 0 ? y.relu() : y.leakyRelu(negativeSlope: c.slope)
    }

    static func fused(_ c: Case, _ x: Tensor, _ w: Tensor, _ b: Tensor, _ rm: Tensor?, _ rv: Tensor?) throws -> Tensor {
        try x.batchNorm(weight: w, bias: b, runningMean: rm, runningVar: rv, training: c.training, leakySlope: c.slope)
    }

    @Test(arguments: cases)
    func valuesFirstOrderGradientsAndRunningStatisticsAreTheSeparateOps(c: Case) throws {
        var results: [([Float], [[Float]], [Float], [Float])] = []
        for path in [Self.separate, Self.fused] {
            let o = Self.operands(c)
            for t in [o.x, o.w, o.b] { t.requiringGradients() }
            // In training, the running statistics are updated; in eval, they normalise.
            let y = try path(c, o.x, o.w, o.b, o.rm, o.rv)
            let g = try gradients(of: try (y * o.r).sum(), wrt: [o.x, o.w, o.b])
            results.append((y.scalars, g.map(\.scalars), o.rm.scalars, o.rv.scalars))
        }
        let (a, b) = (results[0], results[1])
        #expect(a.0 == b.0)
        #expect(a.1 == b.1)
        #expect(a.2 == b.2 && a.3 == b.3)
        // The activation did something: some outputs are negative-side (or zero for a ReLU).
        #expect(b.0.contains { $0 <= 0 } && b.0.contains { $0 > 0 })
    }

    @Test(arguments: cases)
    func recordedBackwardIsTheSeparateOps(c: Case) throws {
        // createGraph: the backward is built from recorded ops, so it can be differentiated again.
        var grads: [[[Float]]] = []
        for path in [Self.separate, Self.fused] {
            let o = Self.operands(c)
            for t in [o.x, o.w, o.b] { t.requiringGradients() }
            let (m, v) = c.training ? (nil, nil) : (o.rm, o.rv)
            let y = try path(c, o.x, o.w, o.b, m, v)
            let g = try gradients(of: try (y * o.r).sum(), wrt: [o.x, o.w, o.b], createGraph: true)
            // A gradient penalty's shape: the gradient's squared norm, differentiated again.
            let penalty = try (g[0] * g[0]).sum()
            let second = try gradients(of: penalty, wrt: [o.x, o.w, o.b])
            grads.append((g + second).map(\.scalars))
        }
        for (a, b) in zip(grads[0], grads[1]) {
            let scale = a.map { abs($0) }.max() ?? 1
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-5 * max(scale, 1))
        }
    }

    @Test func secondOrderGradientCheck() throws {
        var rng = PhiloxRandom(seed: 42)
        let x = Tensor(randomNormal: [4, 2, 1, 3], using: &rng)
        let w = Tensor(randomUniform: [2], low: 0.5, high: 1.5, using: &rng)
        let b = Tensor(randomNormal: [2], std: 0.2, using: &rng)
        let r = Tensor(randomNormal: [4, 2, 1, 3], using: &rng)
        let err = try GradientCheck.secondOrderError([x, w, b]) { v in
            let y = try v[0].batchNorm(weight: v[1], bias: v[2], runningMean: nil, runningVar: nil, training: true, leakySlope: 0.2)
            return try (y * y * r).sum()
        }
        #expect(err < 3e-2)
    }
}
