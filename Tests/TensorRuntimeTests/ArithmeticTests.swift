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

    @Test func broadcastPatternsMatchNaive() throws {
        // Shapes whose axes the kernel coalesces in different ways (per-channel scalars, outer
        // products, size-1 axes in the middle, empty results).
        let pairs: [([Int], [Int])] = [
            ([2, 3, 4, 5], [3, 1, 1]), ([2, 1, 4, 1], [3, 1, 5]), ([4, 1], [1, 5]), ([1, 3, 1, 2], [2, 3, 4, 1]),
            ([2, 3, 1], [1, 1, 7]), ([5, 1, 1, 3], [5, 1, 2, 3]), ([0, 3], [1, 3]),
        ]
        var rng = PhiloxRandom(seed: 4)
        for (sa, sb) in pairs {
            let a = Tensor(randomNormal: sa, using: &rng), b = Tensor(randomNormal: sb, using: &rng)
            let shape = try #require(Tensor.broadcastShape(sa, sb))
            let c = try a - b
            #expect(c.shape == shape)
            let av = a.scalars, bv = b.scalars, cv = c.scalars
            func source(_ index: [Int], _ s: [Int]) -> Int {
                let lead = index.count - s.count
                return s.indices.reduce(0) { $0 * s[$1] + (s[$1] == 1 ? 0 : index[lead + $1]) }
            }
            var index = [Int](repeating: 0, count: shape.count)
            for i in 0..<cv.count {
                #expect(cv[i] == av[source(index, sa)] - bv[source(index, sb)], "\(sa) - \(sb) at \(index)")
                var ax = shape.count - 1
                while ax >= 0 {
                    index[ax] += 1
                    if index[ax] < shape[ax] { break }
                    index[ax] = 0
                    ax -= 1
                }
            }
        }
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
