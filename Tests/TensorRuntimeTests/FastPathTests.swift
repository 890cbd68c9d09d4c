import Testing
import TensorRuntime
import GANFlowTestSupport

/// The runtime's fast paths: fully connected convolutions run as matmuls, first-order backward
/// passes that share layout conversions between kernels, and fused elementwise backward rules.
/// Each is checked against a reference (naive loops, finite differences, or the recorded
/// composite path that the fast path replaces).
@Suite struct FastPathTests {
    /// A window covering the whole unpadded input gives a 1x1 output: the matmul path.
    @Test func fullyConnectedConv2dMatchesNaive() throws {
        var rng = PhiloxRandom(seed: 61)
        let x = Tensor(randomNormal: [5, 6, 4, 3], using: &rng)
        let w = Tensor(randomNormal: [7, 6, 4, 3], using: &rng)
        let b = Tensor(randomNormal: [7], using: &rng)
        for bias in [nil, b] {
            let y = try conv2d(x, weight: w, bias: bias, stride: 2)
            let expected = naiveConv2d(x, w, bias, stride: (2, 2), padding: (0, 0), dilation: (1, 1))
            #expect(y.shape == [5, 7, 1, 1])
            expectClose(y.scalars, expected.values)
        }
    }

    /// DCGAN's generator input layer: a transposed convolution of a 1x1 input.
    @Test func convTranspose2dFromOnePixelMatchesNaive() throws {
        var rng = PhiloxRandom(seed: 62)
        let x = Tensor(randomNormal: [3, 10, 1, 1], using: &rng)
        let w = Tensor(randomNormal: [10, 8, 4, 4], using: &rng)
        let b = Tensor(randomNormal: [8], using: &rng)
        let y = try convTranspose2d(x, weight: w, bias: b)
        let expected = naiveConvTranspose2d(x, w, b, stride: (1, 1), padding: (0, 0), outputPadding: (0, 0), dilation: (1, 1))
        #expect(y.shape == [3, 8, 4, 4])
        expectClose(y.scalars, expected.values)
    }

    @Test func fullyConnectedConvolutionGradients() throws {
        var rng = PhiloxRandom(seed: 63)
        let x = Tensor(randomNormal: [2, 3, 3, 2], using: &rng)
        let w = Tensor(randomNormal: [4, 3, 3, 2], using: &rng)
        let b = Tensor(randomNormal: [4], using: &rng)
        let r = Tensor(randomNormal: [2, 4, 1, 1], using: &rng)
        let err = try GradientCheck.firstOrderError([x, w, b]) { t in
            try (conv2d(t[0], weight: t[1], bias: t[2]) * r).sum()
        }
        #expect(err < 1e-2)

        let z = Tensor(randomNormal: [2, 4, 1, 1], using: &rng)
        let wt = Tensor(randomNormal: [4, 3, 3, 2], using: &rng)
        let rt = Tensor(randomNormal: [2, 3, 3, 2], using: &rng)
        let errT = try GradientCheck.firstOrderError([z, wt]) { t in
            try (convTranspose2d(t[0], weight: t[1]) * rt).sum()
        }
        #expect(errT < 1e-2)
    }

    @Test func fullyConnectedConvolutionSecondOrder() throws {
        var rng = PhiloxRandom(seed: 64)
        let x = Tensor(randomNormal: [2, 2, 2, 2], using: &rng)
        let w = Tensor(randomNormal: [3, 2, 2, 2], std: 0.5, using: &rng)
        let err = try GradientCheck.secondOrderError([x, w]) { t in
            let y = try conv2d(t[0], weight: t[1])
            return try (y * y).sum()
        }
        #expect(err < 2e-2)
    }

    /// The first-order backward of conv2d and convTranspose2d (one reorder of the incoming
    /// gradient for both kernels, the forward's copy of the input reused) gives exactly what the
    /// recorded composite rules give. Channels are multiples of 8 so that oneDNN picks blocked
    /// layouts and the reuse actually happens.
    @Test(arguments: [false, true])
    func firstOrderConvolutionBackwardEqualsRecordedPath(transposed: Bool) throws {
        var rng = PhiloxRandom(seed: transposed ? 66 : 65)
        let x = Tensor(randomNormal: transposed ? [4, 16, 4, 4] : [4, 16, 8, 8], using: &rng).requiringGradients()
        let w = Tensor(randomNormal: [16, 24, 4, 4], std: 0.1, using: &rng).requiringGradients()
        let b = Tensor(randomNormal: [24], using: &rng).requiringGradients()
        func loss() throws -> Tensor {
            if transposed {
                let y = try convTranspose2d(x, weight: w, bias: b, stride: 2, padding: 1)
                return try (y * y).sum()
            }
            let wc = try w.permuted([1, 0, 2, 3])  // [24, 16, 4, 4] as conv2d's weight
            let y = try conv2d(x, weight: wc, bias: b, stride: 2, padding: 1)
            return try (y * y).sum()
        }
        let fast = try gradients(of: loss(), wrt: [x, w, b])
        let recorded = try gradients(of: loss(), wrt: [x, w, b], createGraph: true)
        for (f, r) in zip(fast, recorded) {
            #expect(f.shape == r.shape)
            #expect(f.scalars == r.scalars)
        }
        // Only the weight gradient asked for: the input gradient is skipped, and the weight
        // gradient is still the same.
        let onlyW = try gradients(of: loss(), wrt: [w])
        #expect(onlyW[0].scalars == recorded[1].scalars)
    }

    /// The fused first-order rules of relu, leaky relu, tanh and sigmoid equal the recorded ones
    /// bit for bit, and agree with finite differences.
    @Test func fusedActivationBackwardEqualsRecordedPath() throws {
        var rng = PhiloxRandom(seed: 67)
        let x = Tensor(randomNormal: [3, 5, 7], using: &rng).requiringGradients()
        let r = Tensor(randomNormal: [3, 5, 7], using: &rng)
        let fs: [(String, (Tensor) -> Tensor)] = [
            ("relu", { $0.relu() }), ("leakyRelu", { $0.leakyRelu(negativeSlope: 0.2) }),
            ("tanh", { $0.tanh() }), ("sigmoid", { $0.sigmoid() }),
        ]
        for (name, f) in fs {
            let fast = try gradients(of: (f(x) * r).sum(), wrt: [x])[0]
            let recorded = try gradients(of: (f(x) * r).sum(), wrt: [x], createGraph: true)[0]
            #expect(fast.scalars == recorded.scalars, "\(name)")
            // Away from relu's kink at 0, where central differences straddle it.
            let away = try Tensor(shape: x.shape, scalars: (0..<x.count).map { i in
                (i % 2 == 0 ? 1 : -1) * (0.1 + Float(i % 13) / 8)
            })
            let err = try GradientCheck.firstOrderError([away]) { t in try (f(t[0]) * r).sum() }
            #expect(err < 2e-2, "\(name)")
        }
    }
}
