import Testing
import TensorRuntime
import GANFlowTestSupport

/// StyleGAN2's runtime ops against PyTorch (`Scripts/golden/stylegan2.py`, whose reference agrees
/// with stylegan2-ada-pytorch's `upfirdn2d`, `conv2d_resample` and `modulated_conv2d`), and their
/// gradients of first and second order against finite differences.
@Suite struct StyleGANOpsTests {
    static let golden = Result { try GoldenFixture.load("stylegan2.json") }

    func golden(_ name: String) throws -> GoldenFixture.Case { try Self.golden.get().named(name) }

    @Test func binomialFilterIsNormalised() throws {
        #expect(FIRFilter.binomial.taps == [0.125, 0.375, 0.375, 0.125])
        let m = FIRFilter.binomial.matrix
        #expect(m.shape == [4, 4])
        #expect(abs(m.sum().item() - 1) < 1e-6)
        #expect(throws: TensorError.self) { try FIRFilter([1, -1]) }
    }

    @Test func upsamplingKeepsAConstantImageConstantInside() throws {
        let x = Tensor(repeating: 2, shape: [1, 1, 4, 4])
        let y = try x.upsample2d()
        #expect(y.shape == [1, 1, 8, 8])
        // Away from the zero-padded border every output is the constant (gain 4 over 2x2 taps).
        let v = y.scalars
        for r in 2..<6 { for c in 2..<6 { #expect(abs(v[r * 8 + c] - 2) < 1e-6) } }
    }

    @Test(arguments: ["upsample2d", "downsample2d", "upfirdnCrop"])
    func firMatchesPyTorch(caseName: String) throws {
        let g = try golden(caseName)
        let x = try g.tensor("x").requiringGradients()
        let y: Tensor
        switch caseName {
        case "upsample2d": y = try x.upsample2d()
        case "downsample2d": y = try x.downsample2d()
        default:
            y = try x.upfirdn2d(try FIRFilter([1, 2, 1]), up: g.int("up"), down: g.int("down"),
                                padding: (g.int("before"), g.int("after")), gain: Float(g.params["gain"]!))
        }
        #expect(GoldenFixture.difference(y, try g.tensor("output")) < 1e-5)
        let dx = try gradients(of: (y * g.tensor("upstream")).sum(), wrt: [x])[0]
        #expect(GoldenFixture.difference(dx, try g.tensor("dx")) < 1e-5)
    }

    @Test(arguments: ["convUp", "convDown", "convDown1x1"])
    func convResampleMatchesPyTorch(caseName: String) throws {
        let g = try golden(caseName)
        let x = try g.tensor("x").requiringGradients(), w = try g.tensor("weight").requiringGradients()
        let y = try conv2dResample(x, weight: w, up: g.int("up"), down: g.int("down"), padding: g.int("padding"))
        #expect(GoldenFixture.difference(y, try g.tensor("output")) < 1e-4)
        let d = try gradients(of: (y * g.tensor("upstream")).sum(), wrt: [x, w])
        #expect(GoldenFixture.difference(d[0], try g.tensor("dx")) < 1e-4)
        #expect(GoldenFixture.difference(d[1], try g.tensor("dweight")) < 1e-4)
    }

    @Test(arguments: ["modconv", "modconvUp", "modconvRGB"])
    func modulatedConvolutionMatchesPyTorch(caseName: String) throws {
        let g = try golden(caseName)
        let x = try g.tensor("x").requiringGradients(), w = try g.tensor("weight").requiringGradients()
        let s = try g.tensor("styles").requiringGradients()
        let y = try modulatedConv2d(x, weight: w, styles: s, demodulate: g.int("demodulate") == 1, up: g.int("up"), padding: g.int("padding"))
        #expect(GoldenFixture.difference(y, try g.tensor("output")) < 1e-4)
        let d = try gradients(of: (y * g.tensor("upstream")).sum(), wrt: [x, w, s])
        #expect(GoldenFixture.difference(d[0], try g.tensor("dx")) < 1e-4)
        #expect(GoldenFixture.difference(d[1], try g.tensor("dweight")) < 1e-4)
        #expect(GoldenFixture.difference(d[2], try g.tensor("dstyles")) < 1e-4)
    }

    @Test func demodulationNormalisesEveryOutputChannel() throws {
        // With a 1x1 input and a 1x1 kernel, the demodulated output of a one-hot input is the
        // weight column of that channel divided by the norm of the modulated weight row.
        var rng = PhiloxRandom(seed: 5)
        let w = Tensor(randomNormal: [3, 2, 1, 1], using: &rng)
        let s = try Tensor(shape: [1, 2], scalars: [2, 0.5])
        let x = try Tensor(shape: [1, 2, 1, 1], scalars: [1, 0])
        let y = try modulatedConv2d(x, weight: w, styles: s, padding: 0).scalars
        let wv = w.scalars
        for o in 0..<3 {
            let a = wv[o * 2] * 2, b = wv[o * 2 + 1] * 0.5
            #expect(abs(y[o] - a / (a * a + b * b + 1e-8).squareRoot()) < 1e-5)
        }
    }

    @Test func firGradientsOfEveryOrder() throws {
        var rng = PhiloxRandom(seed: 61)
        let x = Tensor(randomNormal: [1, 2, 3, 3], using: &rng)
        let r = Tensor(randomNormal: [1, 2, 6, 6], using: &rng)
        let f: ([Tensor]) throws -> Tensor = { v in try (v[0].upsample2d().square() * r).sum() }
        #expect(try GradientCheck.firstOrderError([x], f) < 1e-2)
        #expect(try GradientCheck.secondOrderError([x], f) < 2e-2)
    }

    @Test(arguments: [1, 2])
    func modulatedConvolutionSecondOrder(up: Int) throws {
        var rng = PhiloxRandom(seed: 62)
        let x = Tensor(randomNormal: [2, 2, 3, 3], using: &rng)
        let w = Tensor(randomNormal: [2, 2, 3, 3], using: &rng)
        let s = Tensor(randomNormal: [2, 2], mean: 1, std: 0.3, using: &rng)
        let side = 3 * up
        let r = Tensor(randomNormal: [2, 2, side, side], using: &rng)
        let f: ([Tensor]) throws -> Tensor = { v in
            try (modulatedConv2d(v[0], weight: v[1], styles: v[2], up: up, padding: 1).square() * r).sum()
        }
        let first = try GradientCheck.firstOrderError([x, w, s], f), second = try GradientCheck.secondOrderError([x, w, s], f)
        #expect(first < 2e-2)
        #expect(second < 5e-2, "second-order error \(second)")
    }

    @Test func biasActivationIsLeakyReluWithGain() throws {
        let x = try Tensor(shape: [1, 2, 1, 2], scalars: [1, -1, 0.5, -3])
        let b = try Tensor(shape: [2], scalars: [0.5, 1])
        let y = try biasActivation(x, bias: b).scalars
        let g = Float(2).squareRoot()
        let expected: [Float] = [1.5 * g, -0.5 * 0.2 * g, 1.5 * g, -2 * 0.2 * g]
        for (a, e) in zip(y, expected) { #expect(abs(a - e) < 1e-6) }
        #expect(throws: TensorError.self) { try biasActivation(x, bias: Tensor(zeros: [3])) }
    }

    /// The fused op's backward (a mask held constant) against finite differences, first and
    /// second order, for images and for [N, C] rows, with and without the leaky ReLU. Inputs stay
    /// at least 0.15 from the kink, so the differences never cross it.
    @Test(arguments: [[2, 3, 2, 2], [3, 3]], [Float(0.2), 1])
    func biasActivationGradientsOfEveryOrder(shape: [Int], slope: Float) throws {
        var rng = PhiloxRandom(seed: 63)
        let x = Tensor(randomNormal: shape, using: &rng).map { $0 + ($0 >= 0 ? 0.2 : -0.2) }
        let b = try Tensor(shape: [3], scalars: [0.05, -0.04, 0.03])
        let r = Tensor(randomNormal: shape, using: &rng)
        let f: ([Tensor]) throws -> Tensor = { v in
            try (biasActivation(v[0], bias: v[1], slope: slope == 1 ? nil : slope, gain: slope == 1 ? 1 : 1.5).square() * r).sum()
        }
        #expect(try GradientCheck.firstOrderError([x, b], f) < 1e-2)
        #expect(try GradientCheck.secondOrderError([x, b], f) < 2e-2)
        #expect(throws: TensorError.self) { try biasActivation(x, bias: b, gain: 0) }
    }

    @Test func badGeometriesAreErrors() throws {
        let x = Tensor(zeros: [1, 2, 4, 4])
        #expect(throws: TensorError.self) { try conv2dResample(x, weight: Tensor(zeros: [3, 2, 3, 3]), up: 2, down: 2, padding: 1) }
        #expect(throws: TensorError.self) { try modulatedConv2d(x, weight: Tensor(zeros: [3, 2, 3, 3]), styles: Tensor(zeros: [2, 2]), padding: 1) }
        #expect(throws: TensorError.self) { try x.upfirdn2d(.binomial, padding: (-3, -3)) }
    }
}
