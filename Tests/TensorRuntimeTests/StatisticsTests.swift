import Testing
import TensorRuntime
import GANFlowTestSupport

@Suite struct StatisticsTests {
    /// Variance of `values` computed in Double, dividing by n - 1 when `unbiased`.
    static func naiveVariance(_ values: [Float], unbiased: Bool) -> Double {
        let d = values.map(Double.init)
        let mean = d.reduce(0, +) / Double(d.count)
        return d.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(d.count - (unbiased ? 1 : 0))
    }

    @Test func varianceOverAxesMatchesNaive() throws {
        var rng = PhiloxRandom(seed: 21)
        let x = Tensor(randomNormal: [3, 4, 5], mean: 2, std: 3, using: &rng)
        let v = x.scalars
        for unbiased in [true, false] {
            let overMiddle = try x.variance(axes: [1], unbiased: unbiased)
            #expect(overMiddle.shape == [3, 5])
            var reference: [Double] = []
            for i in 0..<3 {
                for k in 0..<5 {
                    reference.append(Self.naiveVariance((0..<4).map { v[i * 20 + $0 * 5 + k] }, unbiased: unbiased))
                }
            }
            #expect(OpsCheck.maxRelativeError(overMiddle.scalars, reference) < 1e-5)
            let kept = try x.variance(axes: [0, 2], keepDims: true, unbiased: unbiased)
            #expect(kept.shape == [1, 4, 1])
            let all = x.variance(unbiased: unbiased)
            #expect(all.shape == [])
            #expect(OpsCheck.maxRelativeError([all.item()], [Self.naiveVariance(v, unbiased: unbiased)]) < 1e-5)
            let sd = try x.standardDeviation(axes: [1], unbiased: unbiased)
            #expect(OpsCheck.maxRelativeError(sd.scalars, reference.map { $0.squareRoot() }) < 1e-5)
        }
    }

    @Test func unbiasedVarianceOfOneElementIsNaN() {
        #expect(Tensor(repeating: 3, shape: [1]).variance().item().isNaN)
        #expect(Tensor(repeating: 3, shape: [1]).variance(unbiased: false).item() == 0)
    }

    @Test func varianceGradientsOfFirstAndSecondOrder() throws {
        var rng = PhiloxRandom(seed: 22)
        let x = Tensor(randomNormal: [3, 4], using: &rng)
        let first = try GradientCheck.firstOrderError([x]) { t in try t[0].standardDeviation(axes: [1]).sum() }
        #expect(first < 1e-2)
        let second = try GradientCheck.secondOrderError([x]) { t in try t[0].variance(axes: [0], unbiased: false).sum() }
        #expect(second < 2e-2)
    }

    @Test func extremesOverAxes() throws {
        let x = try Tensor(shape: [2, 3], scalars: [1, 5, -2, 7, 0, 7])
        #expect(try x.amax(axes: [1]).scalars == [5, 7])
        #expect(try x.amin(axes: [1]).scalars == [-2, 0])
        #expect(try x.amax(axes: [0]).scalars == [7, 5, 7])
        #expect(try x.amin(axes: [0], keepDims: true).shape == [1, 3])
        #expect(try x.amax().item() == 7)
        #expect(try x.amin().item() == -2)
        #expect(try Tensor(shape: [3], scalars: [1, .nan, 2]).amax().item().isNaN)
    }

    @Test func extremeGradientIsSharedAmongTies() throws {
        let x = try Tensor(shape: [2, 3], scalars: [1, 5, -2, 7, 0, 7]).requiringGradients()
        let g = try gradients(of: try x.amax(axes: [1]).sum(), wrt: [x])[0]
        #expect(g.scalars == [0, 1, 0, 0.5, 0, 0.5])
        var rng = PhiloxRandom(seed: 23)
        let y = Tensor(randomNormal: [3, 4], using: &rng)
        let err = try GradientCheck.firstOrderError([y]) { t in (try t[0].amin(axes: [0]) * t[0].amax(axes: [0])).sum() }
        #expect(err < 1e-2)
    }

    @Test func badAxisIsAnError() {
        #expect(throws: TensorError("axis 2 is out of range for shape [2, 3]")) {
            try Tensor(zeros: [2, 3]).variance(axes: [2])
        }
        #expect(throws: TensorError("amax: shape [0] has no elements")) {
            try Tensor(zeros: [0]).amax()
        }
    }
}
