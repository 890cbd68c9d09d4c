import Testing
import TensorRuntime
import GANFlowTestSupport

@Suite struct ArithmeticTests {
    @Test func broadcastAddMatchesNaive() throws {
        var rng = PhiloxRandom(seed: 1)
        let a = Tensor(randomNormal: [2, 3, 4], using: &rng)
        let b = Tensor(randomNormal: [3, 1], using: &rng)
        let c = try a + b
        #expect(c.shape == [2, 3, 4])
        let av = a.scalars, bv = b.scalars, cv = c.scalars
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 {
            #expect(cv[i * 12 + j * 4 + k] == av[i * 12 + j * 4 + k] + bv[j])
        } } }
    }

    @Test func mismatchedShapesThrowNamingBoth() throws {
        let a = Tensor(zeros: [2, 3]), b = Tensor(zeros: [4])
        #expect(throws: TensorError("add: shapes [2, 3] and [4] do not match (cannot broadcast)")) { try a + b }
    }

    @Test func arithmeticGradients() throws {
        var rng = PhiloxRandom(seed: 2)
        let a = Tensor(randomNormal: [2, 3], using: &rng)
        let b = Tensor(randomUniform: [1, 3], low: 1, high: 2, using: &rng)
        let err = try GradientCheck.firstOrderError([a, b]) { x in
            try ((x[0] * x[1] + x[0]) / x[1] - x[1] * 3).sum()
        }
        #expect(err < 1e-2)
    }

    @Test func secondOrderThroughProducts() throws {
        var rng = PhiloxRandom(seed: 3)
        let a = Tensor(randomNormal: [3], using: &rng)
        let err = try GradientCheck.secondOrderError([a]) { x in try (x[0] * x[0] * x[0]).sum() }
        #expect(err < 2e-2)
    }
}
