import Testing
import TensorRuntime
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
