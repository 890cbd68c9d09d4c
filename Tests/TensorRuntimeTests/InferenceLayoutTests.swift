import Testing
import TensorRuntime

/// Inference in the convolution kernels' own terms: conv2dReLU (the ReLU a oneDNN post-op),
/// channels-last activations through convolutions and oneDNN's pooling, and layout copies kept
/// on tensors that do not change. Each against the plain, recorded path it stands for.
@Suite struct InferenceLayoutTests {
    @Test func conv2dReLUMatchesConvThenReLU() throws {
        var rng = PhiloxRandom(seed: 91)
        let x = Tensor(randomNormal: [2, 16, 9, 9], using: &rng)
        let w = Tensor(randomNormal: [32, 16, 3, 3], using: &rng)
        let b = Tensor(randomNormal: [32], using: &rng)
        let expected = try conv2d(x, weight: w, bias: b, padding: 1).relu()
        let fused = try withoutGradients { try conv2dReLU(x, weight: w, bias: b, padding: 1) }
        #expect(fused.shape == [2, 32, 9, 9])
        expectClose(fused.scalars, expected.scalars, tolerance: 1e-5)
        #expect(fused.scalars.contains(0) && fused.scalars.allSatisfy { $0 >= 0 })
        // Read again, the result's kept copy in the kernel layout serves the next convolution.
        let w2 = Tensor(randomNormal: [16, 32, 1, 1], using: &rng)
        let next = try withoutGradients { try conv2dReLU(fused, weight: w2) }
        expectClose(next.scalars, try conv2d(expected, weight: w2).relu().scalars, tolerance: 1e-5)
    }

    /// With gradients wanted it is the two recorded ops.
    @Test func conv2dReLURecordsGradients() throws {
        var rng = PhiloxRandom(seed: 92)
        let x = Tensor(randomNormal: [1, 3, 5, 5], using: &rng)
        let w = Tensor(randomNormal: [4, 3, 3, 3], using: &rng).requiringGradients()
        let y = try conv2dReLU(x, weight: w)
        #expect(y.requiresGrad)
        let g = try gradients(of: y.sum(), wrt: [w])[0]
        let expected = try gradients(of: try conv2d(x, weight: w).relu().sum(), wrt: [w])[0]
        expectClose(g.scalars, expected.scalars, tolerance: 1e-5)
    }

    @Test func channelsLastConvolutionsAndPoolingMatchPlain() throws {
        var rng = PhiloxRandom(seed: 93)
        let x = Tensor(randomNormal: [2, 3, 13, 11], using: &rng)
        let w1 = Tensor(randomNormal: [16, 3, 3, 3], using: &rng), b1 = Tensor(randomNormal: [16], using: &rng)
        let w2 = Tensor(randomNormal: [8, 16, 1, 3], using: &rng)
        let plain = try withoutGradients { () -> [Tensor] in
            let y = try conv2d(x, weight: w1, bias: b1, stride: 2).relu()
            let z = try conv2d(y, weight: w2, padding: Size2D(0, 1)).relu()
            return [y, z, try y.maxPool2d(kernel: 3, stride: 2), try y.maxPool2d(kernel: 3, stride: 1, padding: 1),
                    try y.avgPool2d(kernel: 3, stride: 1, padding: 1, countIncludePad: false),
                    try y.avgPool2d(kernel: 3, stride: 1, padding: 1)]
        }
        let last = try withoutGradients { () -> [Tensor] in
            let y = try conv2dReLU(x, weight: w1, bias: b1, stride: 2, layout: .channelsFirst, resultLayout: .channelsLast)
            let z = try conv2dReLU(y, weight: w2, padding: Size2D(0, 1), layout: .channelsLast)
            return [y, z, try y.maxPool2d(kernel: 3, stride: 2, layout: .channelsLast),
                    try y.maxPool2d(kernel: 3, stride: 1, padding: 1, layout: .channelsLast),
                    try y.avgPool2d(kernel: 3, stride: 1, padding: 1, countIncludePad: false, layout: .channelsLast),
                    try y.avgPool2d(kernel: 3, stride: 1, padding: 1, layout: .channelsLast)]
        }
        for (p, l) in zip(plain, last) {
            #expect(l.shape == [p.shape[0], p.shape[2], p.shape[3], p.shape[1]])
            expectClose(try l.channelsFirst().scalars, p.scalars, tolerance: 1e-5)
        }
        #expect(try x.channelsLast().channelsFirst().scalars == x.scalars)
    }

    @Test func channelsLastRefusesGradients() throws {
        var rng = PhiloxRandom(seed: 94)
        let x = Tensor(randomNormal: [1, 4, 4, 3], using: &rng).requiringGradients()
        let w = Tensor(randomNormal: [3, 3, 1, 1], using: &rng)
        #expect(throws: TensorError.self) { try conv2dReLU(x, weight: w, layout: .channelsLast) }
        #expect(throws: TensorError.self) { try x.maxPool2d(kernel: 2, stride: 2, layout: .channelsLast) }
    }

    /// A tensor that keeps its layout copies reads the same through them; `assign` drops them.
    @Test func keptLayoutCopiesFollowAssign() throws {
        var rng = PhiloxRandom(seed: 95)
        let x = Tensor(randomNormal: [2, 16, 8, 8], using: &rng)
        let w = Tensor(randomNormal: [16, 16, 3, 3], using: &rng)
        x.keepLayoutCopies()
        w.keepLayoutCopies()
        let first = try withoutGradients { try conv2dReLU(x, weight: w, padding: 1) }
        let again = try withoutGradients { try conv2dReLU(x, weight: w, padding: 1) }
        #expect(again.scalars == first.scalars)
        let other = Tensor(randomNormal: [2, 16, 8, 8], using: &rng)
        try x.assign(other)
        let after = try withoutGradients { try conv2dReLU(x, weight: w, padding: 1) }
        expectClose(after.scalars, try conv2d(other, weight: w, padding: 1).relu().scalars, tolerance: 1e-5)
    }
}
