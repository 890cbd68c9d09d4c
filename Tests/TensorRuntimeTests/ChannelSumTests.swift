import Testing
@testable import TensorRuntime
import GANFlowTestSupport

/// `sum(axes: [0, 2, 3])` of an [N, C, H, W] tensor (every bias gradient) has its own loop. It must
/// give the general reduction's sums bit for bit: the same tensor with N and C swapped, summed
/// over [1, 2, 3] by the general walk, folds the same rows in the same order.
@Suite struct ChannelSumTests {
    @Test(arguments: [[3, 5, 4, 7], [2, 16, 8, 8], [1, 1, 1, 1], [4, 3, 1, 9]])
    func channelSumIsTheGeneralWalkBitForBit(shape: [Int]) throws {
        var rng = PhiloxRandom(seed: 71)
        let x = Tensor(randomNormal: shape, mean: 0.5, std: 3, using: &rng)
        let fast = try x.sum(axes: [0, 2, 3])
        let general = try x.permuted([1, 0, 2, 3]).sum(axes: [1, 2, 3])
        #expect(fast.shape == [shape[1]])
        #expect(fast.scalars == general.scalars)
        // And against float64 loops, to a float32 tolerance.
        let v = x.scalars, plane = shape[2] * shape[3]
        for k in 0..<shape[1] {
            var total = 0.0
            for i in 0..<shape[0] { for j in 0..<plane { total += Double(v[(i * shape[1] + k) * plane + j]) } }
            #expect(abs(Double(fast.scalars[k]) - total) <= 1e-4 * max(1, abs(total)))
        }
    }
}

/// The gradient of a broadcast factor (`(g * x).sumTo(s.shape)`) without the product tensor.
@Suite struct ProductSumTests {
    @Test(arguments: [([4, 6, 5, 7], [4, 6, 1, 1]), ([4, 6, 5, 7], []), ([3, 1, 8, 8], []), ([2, 3, 4, 5], [1]),
                      ([2, 3, 4, 5], [2, 3, 4, 1]), ([5, 9], [5, 1])])
    func isTheProductThenTheSumBitForBit(shape: [Int], target: [Int]) throws {
        var rng = PhiloxRandom(seed: 17)
        let a = Tensor(randomNormal: shape, mean: 0.2, std: 2, using: &rng)
        let b = Tensor(randomNormal: shape, using: &rng)
        #expect(Tensor.trailingReduction(shape, to: target) != nil)
        let fused = try withoutGradients { try Tensor.productSum(a, b, to: target) }
        let composite = try withoutGradients { try (a * b).sumTo(target) }
        #expect(fused.shape == target)
        #expect(fused.scalars == composite.scalars)
    }

    @Test func otherReductionsTakeTheTwoOps() {
        #expect(Tensor.trailingReduction([4, 6, 5, 7], to: [6, 1, 1]) == nil)      // sums the batch
        #expect(Tensor.trailingReduction([4, 6, 5, 7], to: [1, 6, 1, 1]) == nil)
        #expect(Tensor.trailingReduction([4, 6, 5, 1], to: [4, 1, 1, 1]) == nil)   // innermost of length 1
        #expect(Tensor.trailingReduction([4, 6, 5, 7], to: [4, 6, 5, 7]) == nil)   // nothing summed
        #expect(Tensor.trailingReduction([4, 6, 5, 7], to: [4, 6, 1, 1]) == 24)
    }

    /// The modulation's gradients, first order through the fused sum and second order through
    /// the recorded ops, against finite differences.
    @Test func modulationGradientsOfEveryOrder() throws {
        var rng = PhiloxRandom(seed: 5)
        let x = Tensor(randomNormal: [2, 3, 4, 4], using: &rng).requiringGradients()
        let s = Tensor(randomNormal: [2, 3, 1, 1], using: &rng).requiringGradients()
        let w = Tensor(randomNormal: [2, 3, 4, 4], using: &rng)
        let (gx, gs) = try { () throws -> (Tensor, Tensor) in
            let g = try gradients(of: try ((x * s) * w).sum(), wrt: [x, s])
            return (g[0], g[1])
        }()
        #expect(largestDifference(gs.scalars, try withoutGradients { try (x * w).sum(axes: [2, 3], keepDims: true) }.scalars) < 1e-5)
        #expect(largestDifference(gx.scalars, try withoutGradients { try w * s }.scalars) < 1e-6)
        // d/dx of sum(grad_s^2), grad_s = sum_hw(x w): 2 grad_s w, through the recorded backward.
        let first = try gradients(of: try ((x * s) * w).sum(), wrt: [s], createGraph: true)[0]
        let second = try gradients(of: try (first * first).sum(), wrt: [x])[0]
        let expected = try withoutGradients { try (x * w).sum(axes: [2, 3], keepDims: true) * 2 * w }
        #expect(largestDifference(second.scalars, expected.scalars) < 1e-4)
    }
}
