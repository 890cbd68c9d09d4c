import Testing
import TensorRuntime
import GANFlowTestSupport

@Suite struct BatchNormTests {
    /// Per-channel mean and biased variance by plain loops, in Double.
    static func naiveMoments(_ x: Tensor) -> (mean: [Double], variance: [Double]) {
        let n = x.shape[0], c = x.shape[1], s = x.rank == 4 ? x.shape[2] * x.shape[3] : 1
        let v = x.scalars
        var mean = [Double](repeating: 0, count: c), variance = [Double](repeating: 0, count: c)
        for k in 0..<c {
            var total = 0.0
            for i in 0..<n { for j in 0..<s { total += Double(v[(i * c + k) * s + j]) } }
            mean[k] = total / Double(n * s)
            var sq = 0.0
            for i in 0..<n { for j in 0..<s {
                let d = Double(v[(i * c + k) * s + j]) - mean[k]
                sq += d * d
            } }
            variance[k] = sq / Double(n * s)
        }
        return (mean, variance)
    }

    /// `(x - mean) / sqrt(var + eps) * w + b` per channel, by plain loops.
    static func naiveNormalise(_ x: Tensor, mean: [Double], variance: [Double], w: [Float], b: [Float], eps: Double) -> [Float] {
        let n = x.shape[0], c = x.shape[1], s = x.rank == 4 ? x.shape[2] * x.shape[3] : 1
        let v = x.scalars
        var out = [Float](repeating: 0, count: v.count)
        for i in 0..<n { for k in 0..<c { for j in 0..<s {
            let idx = (i * c + k) * s + j
            out[idx] = Float((Double(v[idx]) - mean[k]) / (variance[k] + eps).squareRoot() * Double(w[k]) + Double(b[k]))
        } } }
        return out
    }

    @Test(arguments: [[3, 2, 2, 3], [6, 4]])
    func trainingForwardMatchesNaive(shape: [Int]) throws {
        var rng = PhiloxRandom(seed: 11)
        let c = shape[1]
        let x = Tensor(randomNormal: shape, mean: 1, std: 3, using: &rng)
        let w = Tensor(randomUniform: [c], low: 0.5, high: 1.5, using: &rng)
        let b = Tensor(randomNormal: [c], using: &rng)
        let y = try x.batchNorm(weight: w, bias: b, runningMean: nil, runningVar: nil, training: true)
        let (mean, variance) = Self.naiveMoments(x)
        let expected = Self.naiveNormalise(x, mean: mean, variance: variance, w: w.scalars, b: b.scalars, eps: 1e-5)
        #expect(y.shape == shape)
        for (a, e) in zip(y.scalars, expected) { #expect(abs(a - e) < 1e-5) }
    }

    @Test func runningStatsUpdateOneStepWithUnbiasedVariance() throws {
        // Channel 0 holds 1 and 3 (mean 2, biased variance 1, unbiased 2); channel 1 holds 0 and 4
        // (mean 2, biased variance 4, unbiased 8).
        let x = try Tensor(shape: [2, 2], scalars: [1, 0, 3, 4])
        let rm = try Tensor(shape: [2], scalars: [0.5, -1])
        let rv = try Tensor(shape: [2], scalars: [1, 2])
        let y = try x.batchNorm(weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true, momentum: 0.2)
        // running = 0.8 * running + 0.2 * batch
        let expectedMean: [Float] = [0.8 * 0.5 + 0.2 * 2, 0.8 * -1 + 0.2 * 2]
        let expectedVar: [Float] = [0.8 * 1 + 0.2 * 2, 0.8 * 2 + 0.2 * 8]
        for (a, e) in zip(rm.scalars, expectedMean) { #expect(abs(a - e) < 1e-6) }
        for (a, e) in zip(rv.scalars, expectedVar) { #expect(abs(a - e) < 1e-6) }
        // The output is normalised with the biased variance: (1 - 2) / sqrt(1 + 1e-5), etc.
        let expected: [Float] = [-1, -1, 1, 1].map { $0 / (1 + 1e-5 as Float).squareRoot() }
        let scaled: [Float] = [expected[0], expected[1] * 2 / (4 + 1e-5 as Float).squareRoot(),
                               expected[2], expected[3] * 2 / (4 + 1e-5 as Float).squareRoot()]
        for (a, e) in zip(y.scalars, scaled) { #expect(abs(a - e) < 1e-5) }
    }

    @Test func defaultMomentumIsPointOne() throws {
        let x = try Tensor(shape: [2, 1], scalars: [1, 3])
        let rm = Tensor(zeros: [1]), rv = Tensor(repeating: 1, shape: [1])
        _ = try x.batchNorm(weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true)
        #expect(abs(rm.item() - 0.2) < 1e-6)  // 0.9 * 0 + 0.1 * 2
        #expect(abs(rv.item() - 1.1) < 1e-6)  // 0.9 * 1 + 0.1 * 2
    }

    @Test func evalUsesRunningStatsAndLeavesThemAlone() throws {
        var rng = PhiloxRandom(seed: 12)
        let x = Tensor(randomNormal: [2, 3, 2, 2], using: &rng)
        let w = Tensor(randomUniform: [3], low: 0.5, high: 1.5, using: &rng)
        let b = Tensor(randomNormal: [3], using: &rng)
        let rm = try Tensor(shape: [3], scalars: [0.3, -0.5, 1])
        let rv = try Tensor(shape: [3], scalars: [0.5, 2, 1.5])
        let y = try x.batchNorm(weight: w, bias: b, runningMean: rm, runningVar: rv, training: false)
        let expected = Self.naiveNormalise(
            x, mean: rm.scalars.map(Double.init), variance: rv.scalars.map(Double.init),
            w: w.scalars, b: b.scalars, eps: 1e-5)
        for (a, e) in zip(y.scalars, expected) { #expect(abs(a - e) < 1e-5) }
        #expect(rm.scalars == [0.3, -0.5, 1])
        #expect(rv.scalars == [0.5, 2, 1.5])
    }

    @Test func withoutRunningStatsEvalUsesBatchStats() throws {
        var rng = PhiloxRandom(seed: 13)
        let x = Tensor(randomNormal: [4, 2], using: &rng)
        let train = try x.batchNorm(weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true)
        let eval = try x.batchNorm(weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: false)
        #expect(train.scalars == eval.scalars)
    }

    @Test(arguments: ["batchNorm4d", "batchNorm2d"])
    func matchesPyTorch(caseName: String) throws {
        let golden = try GoldenFixture.load().named(caseName)
        let momentum = Float(golden.params["momentum"]!)
        let x = try golden.tensor("x"), w = try golden.tensor("weight"), b = try golden.tensor("bias")
        let rm = try golden.tensor("runningMean"), rv = try golden.tensor("runningVar")
        for leaf in [x, w, b] { leaf.requiringGradients() }
        let upstream = try golden.tensor("upstream")

        let y = try x.batchNorm(weight: w, bias: b, runningMean: rm, runningVar: rv, training: true, momentum: momentum)
        #expect(GoldenFixture.difference(y, try golden.tensor("trainOutput")) < 1e-5)
        #expect(GoldenFixture.difference(rm, try golden.tensor("updatedRunningMean")) < 1e-6)
        #expect(GoldenFixture.difference(rv, try golden.tensor("updatedRunningVar")) < 1e-6)
        var g = try gradients(of: y, wrt: [x, w, b], seed: upstream)
        #expect(GoldenFixture.difference(g[0], try golden.tensor("trainDx")) < 1e-5)
        #expect(GoldenFixture.difference(g[1], try golden.tensor("trainDweight")) < 1e-5)
        #expect(GoldenFixture.difference(g[2], try golden.tensor("trainDbias")) < 1e-5)

        let e = try x.batchNorm(weight: w, bias: b, runningMean: rm, runningVar: rv, training: false, momentum: momentum)
        #expect(GoldenFixture.difference(e, try golden.tensor("evalOutput")) < 1e-5)
        g = try gradients(of: e, wrt: [x, w, b], seed: upstream)
        #expect(GoldenFixture.difference(g[0], try golden.tensor("evalDx")) < 1e-5)
        #expect(GoldenFixture.difference(g[1], try golden.tensor("evalDweight")) < 1e-5)
        #expect(GoldenFixture.difference(g[2], try golden.tensor("evalDbias")) < 1e-5)
    }

    @Test(arguments: [(true, [3, 2, 2, 2]), (true, [5, 3]), (false, [3, 2, 2, 2])])
    func gradientsOfInputWeightAndBias(training: Bool, shape: [Int]) throws {
        var rng = PhiloxRandom(seed: 14)
        let c = shape[1]
        let x = Tensor(randomNormal: shape, using: &rng)
        let w = Tensor(randomUniform: [c], low: 0.5, high: 1.5, using: &rng)
        let b = Tensor(randomNormal: [c], using: &rng)
        let rm = Tensor(randomNormal: [c], std: 0.3, using: &rng)
        let rv = Tensor(randomUniform: [c], low: 0.5, high: 1.5, using: &rng)
        // A weighted sum: a plain sum of a batch-normalised output has zero gradient in x.
        let r = Tensor(randomNormal: shape, using: &rng)
        let err = try GradientCheck.firstOrderError([x, w, b]) { v in
            // Eval mode reads running statistics that training would change; keep them fixed.
            let (m, s) = training ? (nil, nil) : (rm, rv)
            return try (v[0].batchNorm(weight: v[1], bias: v[2], runningMean: m, runningVar: s, training: training) * r).sum()
        }
        #expect(err < 1e-2)
    }

    @Test func secondOrderThroughTrainingBatchNorm() throws {
        var rng = PhiloxRandom(seed: 15)
        let x = Tensor(randomNormal: [4, 2, 1, 2], using: &rng)
        let w = Tensor(randomUniform: [2], low: 0.5, high: 1.5, using: &rng)
        let b = Tensor(randomNormal: [2], using: &rng)
        let r = Tensor(randomNormal: [4, 2, 1, 2], using: &rng)
        let err = try GradientCheck.secondOrderError([x, w, b]) { v in
            let y = try v[0].batchNorm(weight: v[1], bias: v[2], runningMean: nil, runningVar: nil, training: true)
            return try (y * y * r).sum()
        }
        #expect(err < 3e-2)
    }

    @Test(arguments: [true, false])
    func fusedAndRecordedBackwardsAgree(training: Bool) throws {
        var rng = PhiloxRandom(seed: 16)
        let x = Tensor(randomNormal: [3, 4, 2, 2], mean: 0.5, std: 2, using: &rng).requiringGradients()
        let w = Tensor(randomUniform: [4], low: 0.5, high: 1.5, using: &rng).requiringGradients()
        let b = Tensor(randomNormal: [4], using: &rng).requiringGradients()
        let rm = Tensor(randomNormal: [4], using: &rng), rv = Tensor(randomUniform: [4], low: 0.5, high: 2, using: &rng)
        let r = Tensor(randomNormal: [3, 4, 2, 2], using: &rng)
        let y = try x.batchNorm(weight: w, bias: b, runningMean: training ? nil : rm, runningVar: training ? nil : rv, training: training)
        let loss = try (y * r).sum()
        let fused = try gradients(of: loss, wrt: [x, w, b])
        let recorded = try gradients(of: loss, wrt: [x, w, b], createGraph: true)
        for (f, c) in zip(fused, recorded) { #expect(GoldenFixture.difference(f, c) < 1e-5) }
    }

    @Test func invalidShapesThrowNamingThem() throws {
        let x = Tensor(zeros: [2, 3, 4])
        #expect(throws: TensorError("batchNorm: expected an input of shape [N, C] or [N, C, H, W], got [2, 3, 4]")) {
            try x.batchNorm(weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true)
        }
        #expect(throws: TensorError("batchNorm: weight has shape [2], expected [3] for input [2, 3]")) {
            try Tensor(zeros: [2, 3]).batchNorm(weight: Tensor(zeros: [2]), bias: nil, runningMean: nil, runningVar: nil, training: true)
        }
        #expect(throws: TensorError("batchNorm: expected more than 1 value per channel when training, got input [1, 3, 1, 1]")) {
            try Tensor(zeros: [1, 3, 1, 1]).batchNorm(weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true)
        }
    }
}
