import Testing
import TensorRuntime
import GANFlowTestSupport

@Suite struct PoolingTests {
    /// Average pooling by plain loops over an explicitly zero-padded input, divided by k * k.
    static func naiveAvgPool(_ x: Tensor, kernel k: Int, stride s: Int, padding p: Int) -> (shape: [Int], values: [Float]) {
        let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
        let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
        let v = x.scalars
        var out: [Float] = []
        for i in 0..<n { for ch in 0..<c { for a in 0..<oh { for b in 0..<ow {
            var total: Float = 0
            for u in 0..<k { for t in 0..<k {
                let row = a * s + u - p, col = b * s + t - p
                if row >= 0 && row < h && col >= 0 && col < w { total += v[((i * c + ch) * h + row) * w + col] }
            } }
            out.append(total / Float(k * k))
        } } } }
        return ([n, c, oh, ow], out)
    }

    @Test(arguments: [(2, 2, 0), (3, 1, 1), (3, 2, 1), (2, 1, 1), (4, 3, 2)])
    func forwardMatchesNaive(kernel: Int, stride: Int, padding: Int) throws {
        var rng = PhiloxRandom(seed: 21)
        let x = Tensor(randomNormal: [2, 3, 7, 6], using: &rng)
        let y = try x.avgPool2d(kernel: kernel, stride: stride, padding: padding)
        let expected = Self.naiveAvgPool(x, kernel: kernel, stride: stride, padding: padding)
        #expect(y.shape == expected.shape)
        for (a, e) in zip(y.scalars, expected.values) { #expect(abs(a - e) < 1e-6) }
    }

    @Test(arguments: [2, 3])
    func tilingBlocksMatchNaive(kernel: Int) throws {
        // Stride == kernel, no padding and sizes that are multiples of it take the block kernel.
        var rng = PhiloxRandom(seed: 23)
        let x = Tensor(randomNormal: [2, 3, 6, 12], using: &rng)
        let y = try x.avgPool2d(kernel: kernel)
        let expected = Self.naiveAvgPool(x, kernel: kernel, stride: kernel, padding: 0)
        #expect(y.shape == expected.shape)
        for (a, e) in zip(y.scalars, expected.values) { #expect(abs(a - e) < 1e-6) }
    }

    @Test func strideDefaultsToKernel() throws {
        let x = try Tensor(shape: [1, 1, 2, 4], scalars: [1, 2, 3, 4, 5, 6, 7, 8])
        let y = try x.avgPool2d(kernel: 2)
        #expect(y.shape == [1, 1, 1, 2])
        #expect(y.scalars == [3.5, 5.5])
    }

    @Test func matchesPyTorch() throws {
        let golden = try GoldenFixture.load().named("avgPool")
        let x = try golden.tensor("x").requiringGradients()
        let y = try x.avgPool2d(kernel: golden.int("kernel"), stride: golden.int("stride"), padding: golden.int("padding"))
        #expect(GoldenFixture.difference(y, try golden.tensor("output")) < 1e-6)
        let dx = try gradients(of: y, wrt: [x], seed: try golden.tensor("upstream"))[0]
        #expect(GoldenFixture.difference(dx, try golden.tensor("dx")) < 1e-6)
    }

    @Test(arguments: [(2, 2, 0, 5), (2, 2, 0, 4), (3, 2, 1, 5)])
    func firstAndSecondOrderGradients(kernel: Int, stride: Int, padding: Int, height: Int) throws {
        var rng = PhiloxRandom(seed: 22)
        let x = Tensor(randomNormal: [1, 2, height, 4], using: &rng)
        let shape = try x.avgPool2d(kernel: kernel, stride: stride, padding: padding).shape
        let r = Tensor(randomNormal: shape, using: &rng)
        // Squaring the pooled values makes the gradient depend on x, so second order is not trivially 0.
        let f: ([Tensor]) throws -> Tensor = { v in
            let y = try v[0].avgPool2d(kernel: kernel, stride: stride, padding: padding)
            return try (y * y * r).sum()
        }
        #expect(try GradientCheck.firstOrderError([x], f) < 1e-2)
        #expect(try GradientCheck.secondOrderError([x], f) < 2e-2)
    }

    @Test func invalidArgumentsThrow() throws {
        let x = Tensor(zeros: [1, 1, 4, 4])
        #expect(throws: TensorError("avgPool2d: padding 2 must be at most half the kernel 3")) {
            try x.avgPool2d(kernel: 3, padding: 2)
        }
        #expect(throws: TensorError("avgPool2d: kernel 5 with padding 0 is larger than the input [1, 1, 4, 4]")) {
            try x.avgPool2d(kernel: 5)
        }
        #expect(throws: TensorError("avgPool2d: expected an input of shape [N, C, H, W], got [4, 4]")) {
            try Tensor(zeros: [4, 4]).avgPool2d(kernel: 2)
        }
    }
}
