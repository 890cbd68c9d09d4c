import Dispatch
import Testing
@testable import TensorRuntime
import GANFlowTestSupport

/// Direct loops over the definition: y[n, o, i, j] = b[o] + sum over c, p, q of
/// x[n, c, i s - pad + p d, j s - pad + q d] w[o, c, p, q], zero outside the input.
func naiveConv2d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: (Int, Int), padding: (Int, Int),
                 dilation: (Int, Int)) -> (shape: [Int], values: [Float]) {
    let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (o, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
    let oh = (h + 2 * padding.0 - dilation.0 * (kh - 1) - 1) / stride.0 + 1
    let ow = (wd + 2 * padding.1 - dilation.1 * (kw - 1) - 1) / stride.1 + 1
    let xv = x.scalars, wv = w.scalars, bv = b?.scalars
    var y = [Float](repeating: 0, count: n * o * oh * ow)
    for b0 in 0..<n { for oc in 0..<o { for i in 0..<oh { for j in 0..<ow {
        var s: Float = bv?[oc] ?? 0
        for ic in 0..<c { for p in 0..<kh { for q in 0..<kw {
            let r = i * stride.0 - padding.0 + p * dilation.0
            let t = j * stride.1 - padding.1 + q * dilation.1
            guard r >= 0, r < h, t >= 0, t < wd else { continue }
            s += xv[((b0 * c + ic) * h + r) * wd + t] * wv[((oc * c + ic) * kh + p) * kw + q]
        } } }
        y[((b0 * o + oc) * oh + i) * ow + j] = s
    } } } }
    return ([n, o, oh, ow], y)
}

/// Scatters every input element through the kernel: the definition of a transposed convolution,
/// with `weight` [Cin, Cout, KH, KW].
func naiveConvTranspose2d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: (Int, Int), padding: (Int, Int),
                          outputPadding: (Int, Int), dilation: (Int, Int)) -> (shape: [Int], values: [Float]) {
    let (n, ci, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (co, kh, kw) = (w.shape[1], w.shape[2], w.shape[3])
    let oh = (h - 1) * stride.0 - 2 * padding.0 + dilation.0 * (kh - 1) + outputPadding.0 + 1
    let ow = (wd - 1) * stride.1 - 2 * padding.1 + dilation.1 * (kw - 1) + outputPadding.1 + 1
    let xv = x.scalars, wv = w.scalars
    var y = [Float](repeating: 0, count: n * co * oh * ow)
    if let bv = b?.scalars {
        for b0 in 0..<n { for oc in 0..<co { for k in 0..<(oh * ow) { y[(b0 * co + oc) * oh * ow + k] = bv[oc] } } }
    }
    for b0 in 0..<n { for ic in 0..<ci { for i in 0..<h { for j in 0..<wd {
        let v = xv[((b0 * ci + ic) * h + i) * wd + j]
        for oc in 0..<co { for p in 0..<kh { for q in 0..<kw {
            let r = i * stride.0 - padding.0 + p * dilation.0
            let t = j * stride.1 - padding.1 + q * dilation.1
            guard r >= 0, r < oh, t >= 0, t < ow else { continue }
            y[((b0 * co + oc) * oh + r) * ow + t] += v * wv[((ic * co + oc) * kh + p) * kw + q]
        } } }
    } } } }
    return ([n, co, oh, ow], y)
}

@Suite struct ConvolutionTests {
    @Test func conv2dMatchesNaiveWithStridePaddingDilationAndBias() throws {
        var rng = PhiloxRandom(seed: 31)
        let x = Tensor(randomNormal: [2, 3, 7, 8], using: &rng)
        let w = Tensor(randomNormal: [4, 3, 3, 2], using: &rng)
        let b = Tensor(randomNormal: [4], using: &rng)
        let y = try conv2d(x, weight: w, bias: b, stride: Size2D(2, 1), padding: Size2D(1, 2), dilation: Size2D(2, 1))
        let expected = naiveConv2d(x, w, b, stride: (2, 1), padding: (1, 2), dilation: (2, 1))
        #expect(y.shape == expected.shape)
        expectClose(y.scalars, expected.values)
    }

    @Test func conv2dIgnoresRowsNoWindowReaches() throws {
        // H = 6, k = 3, stride 2: output rows start at 0 and 2, so input row 5 is never read.
        var rng = PhiloxRandom(seed: 32)
        let x = Tensor(randomNormal: [1, 2, 6, 6], using: &rng)
        let w = Tensor(randomNormal: [3, 2, 3, 3], using: &rng)
        let y = try conv2d(x, weight: w, stride: 2)
        let expected = naiveConv2d(x, w, nil, stride: (2, 2), padding: (0, 0), dilation: (1, 1))
        #expect(y.shape == [1, 3, 2, 2])
        expectClose(y.scalars, expected.values)
    }

    @Test func convTranspose2dMatchesNaiveWithOutputPadding() throws {
        var rng = PhiloxRandom(seed: 33)
        let x = Tensor(randomNormal: [2, 3, 4, 3], using: &rng)
        let w = Tensor(randomNormal: [3, 2, 4, 3], using: &rng)
        let b = Tensor(randomNormal: [2], using: &rng)
        let y = try convTranspose2d(x, weight: w, bias: b, stride: Size2D(2, 3), padding: Size2D(1, 1),
                                    outputPadding: Size2D(1, 2), dilation: Size2D(1, 2))
        let expected = naiveConvTranspose2d(x, w, b, stride: (2, 3), padding: (1, 1), outputPadding: (1, 2), dilation: (1, 2))
        #expect(y.shape == expected.shape)
        expectClose(y.scalars, expected.values)
    }

    @Test func convTranspose2dDoublesDCGANFeatureMaps() throws {
        var rng = PhiloxRandom(seed: 34)
        let x = Tensor(randomNormal: [1, 4, 4, 4], using: &rng)
        let w = Tensor(randomNormal: [4, 2, 4, 4], using: &rng)
        let y = try convTranspose2d(x, weight: w, stride: 2, padding: 1)
        let expected = naiveConvTranspose2d(x, w, nil, stride: (2, 2), padding: (1, 1), outputPadding: (0, 0), dilation: (1, 1))
        #expect(y.shape == [1, 2, 8, 8])
        expectClose(y.scalars, expected.values)
    }

    /// A convolution's input gradient into fewer than 16 channels (a discriminator's image
    /// gradient; a generator's last transposed convolution is the same kernel) runs on oneDNN's
    /// GEMM-based backward-data kernel in fp32 too, and is the transposed convolution of the
    /// output gradient by the definition.
    @Test(arguments: [1, 3])
    func imageGradientIsTheTransposedConvolutionOnTheGEMMKernel(channels: Int) throws {
        var rng = PhiloxRandom(seed: 36)
        let x = Tensor(randomNormal: [4, channels, 16, 16], using: &rng).requiringGradients()
        let w = Tensor(randomNormal: [32, channels, 4, 4], std: 0.1, using: &rng)
        let dy = Tensor(randomNormal: [4, 32, 8, 8], using: &rng)
        let dx = try gradients(of: try conv2d(x, weight: w, stride: 2, padding: 1), wrt: [x], seed: dy)[0]
        let expected = naiveConvTranspose2d(dy, w, nil, stride: (2, 2), padding: (1, 1), outputPadding: (0, 0), dilation: (1, 1))
        #expect(dx.shape == expected.shape)
        expectClose(dx.scalars, expected.values)
        let g = ConvGeometry(input: [4, channels, 16, 16], weight: [32, channels, 4, 4], output: [4, 32, 8, 8],
                             stride: [2, 2], padding: [1, 1], dilation: [1, 1])
        let kernel = try ComputePrecision.with(.fp32) { try ConvolutionPrimitives.backwardData(g).implementation }
        #expect(kernel.hasPrefix("x64:gemm"), "\(kernel)")
    }

    /// The Zen 4-measured kernel preferences, on oneDNN 2.6's names: `jit_bf16` is taken over
    /// `brgconv` where both are AVX512_BF16 kernels, and yields to an AMX first choice (Sapphire
    /// Rapids); GEMM does not yield. The choice is a rule on names, checked here on every CPU.
    @Test func kernelPreferencesYieldToAMXWhereMeasuredWithout() {
        let zen4 = ["brgconv:avx512_core_bf16", "jit_bf16:avx512_core_bf16", "x64:gemm:jit", "ref:any"]
        let sapphireRapids = ["brgconv:avx512_core_amx", "jit:avx512_core_amx"] + zen4
        #expect(KernelPreference.jitBF16.choice(zen4) == 1)
        #expect(KernelPreference.gemm.choice(zen4) == 2)
        #expect(KernelPreference.jitBF16.choice(sapphireRapids) == 0)
        #expect(KernelPreference.gemm.choice(sapphireRapids) == 4)
        // An AMX kernel that is not oneDNN's first choice is not taken for being AMX.
        #expect(KernelPreference.jitBF16.choice(["brgconv:avx512_core_bf16", "jit:avx512_core_amx", "jit_bf16:avx512_core_bf16"]) == 2)
        #expect(KernelPreference.jitBF16.choice(["brgconv:avx512_core_bf16"]) == nil)
        #expect(KernelPreference.gemm.choice([]) == nil)
    }

    /// On this CPU, DCGAN's second layer in bf16 channels last (as training runs it) gets
    /// `jit_bf16`, or on a CPU with AMX oneDNN's AMX kernel.
    @Test(.enabled(if: bf16Unavailable == nil, Comment(rawValue: bf16Unavailable ?? "")))
    func bf16ChannelsLastForwardTakesAMXWhereTheCPUHasIt() throws {
        let g = ConvGeometry(input: [64, 64, 16, 16], weight: [128, 64, 4, 4], output: [64, 128, 8, 8],
                             stride: [2, 2], padding: [1, 1], dilation: [1, 1])
        let layouts = ConvStorage(input: .channelsLast, output: .channelsLast, kernelChannelsLast: true)
        let kernel = try ComputePrecision.with(.bf16) { try ConvolutionPrimitives.forward(g, bias: false, layouts: layouts).implementation }
        if DNNLDiagnostics.effectiveISA == "avx512_core_amx" {
            #expect(kernel.contains("_amx"), "\(kernel) on \(DNNLDiagnostics.effectiveISA)")
        } else {
            #expect(kernel.hasPrefix("jit_bf16"), "\(kernel) on \(DNNLDiagnostics.effectiveISA)")
        }
    }

    @Test func conv2dGradients() throws {
        var rng = PhiloxRandom(seed: 35)
        let x = Tensor(randomNormal: [2, 2, 5, 6], using: &rng)
        let w = Tensor(randomNormal: [3, 2, 3, 2], using: &rng)
        let b = Tensor(randomNormal: [3], using: &rng)
        let r = Tensor(randomNormal: [2, 3, 3, 2], using: &rng)
        let err = try GradientCheck.firstOrderError([x, w, b]) { t in
            try (conv2d(t[0], weight: t[1], bias: t[2], stride: 2, padding: Size2D(1, 0), dilation: Size2D(1, 2)) * r).sum()
        }
        #expect(err < 1e-2)
    }

    @Test func convTranspose2dGradients() throws {
        var rng = PhiloxRandom(seed: 36)
        let x = Tensor(randomNormal: [2, 3, 3, 2], using: &rng)
        let w = Tensor(randomNormal: [3, 2, 3, 3], using: &rng)
        let b = Tensor(randomNormal: [2], using: &rng)
        let r = Tensor(randomNormal: [2, 2, 6, 4], using: &rng)
        let err = try GradientCheck.firstOrderError([x, w, b]) { t in
            try (convTranspose2d(t[0], weight: t[1], bias: t[2], stride: 2, padding: 1, outputPadding: 1) * r).sum()
        }
        #expect(err < 1e-2)
    }

    @Test func conv2dSecondOrder() throws {
        // sum(y^2) makes every gradient depend on both inputs, so the penalty-style second order
        // goes through the transposed-convolution and weight-gradient ops' own backward rules.
        var rng = PhiloxRandom(seed: 37)
        let x = Tensor(randomNormal: [1, 2, 4, 4], using: &rng)
        let w = Tensor(randomNormal: [2, 2, 3, 3], std: 0.5, using: &rng)
        let b = Tensor(randomNormal: [2], using: &rng)
        let err = try GradientCheck.secondOrderError([x, w, b]) { t in
            let y = try conv2d(t[0], weight: t[1], bias: t[2], stride: 2, padding: 1)
            return try (y * y).sum()
        }
        #expect(err < 2e-2)
    }

    @Test func convTranspose2dSecondOrder() throws {
        var rng = PhiloxRandom(seed: 38)
        let x = Tensor(randomNormal: [1, 2, 3, 3], using: &rng)
        let w = Tensor(randomNormal: [2, 2, 2, 2], std: 0.5, using: &rng)
        let err = try GradientCheck.secondOrderError([x, w]) { t in
            let y = try convTranspose2d(t[0], weight: t[1], stride: 2)
            return try (y * y).sum()
        }
        #expect(err < 2e-2)
    }

    @Test func gradientPenaltyOnInputGradientReachesWeights() throws {
        // WGAN-GP: penalty = sum((dD/dx)^2), differentiated with respect to D's weight.
        var rng = PhiloxRandom(seed: 39)
        let x = Tensor(randomNormal: [1, 1, 4, 4], using: &rng).requiringGradients()
        let w = Tensor(randomNormal: [2, 1, 2, 2], using: &rng)
        let err = try GradientCheck.firstOrderError([w]) { t in
            let y = try conv2d(x, weight: t[0], stride: 2)
            let gx = try gradients(of: (y * y).sum(), wrt: [x], createGraph: true)[0]
            return try (gx * gx).sum()
        }
        #expect(err < 2e-2)
    }

    @Test func weightGradientIsNotComputedWhenOnlyTheInputsIsAsked() throws {
        // A geometry no other test uses, so the primitive cache shows what this one created.
        var rng = PhiloxRandom(seed: 40)
        let x = Tensor(randomNormal: [1, 3, 9, 9], using: &rng).requiringGradients()
        let w = Tensor(randomNormal: [5, 3, 2, 2], using: &rng).requiringGradients()
        let y = try conv2d(x, weight: w, stride: 3).sum()
        _ = try gradients(of: y, wrt: [x])
        let created = DNNLDiagnostics.choices.map(\.primitive).filter { $0.contains("w [5, 3, 2, 2]") }
        #expect(created.contains { $0.hasPrefix("conv.backward_data") })
        #expect(!created.contains { $0.hasPrefix("conv.backward_weights") })
    }

    @Test func concurrentExecutionsAgreeWithSerial() throws {
        var rng = PhiloxRandom(seed: 41)
        let inputs = (0..<4).map { _ in Tensor(randomNormal: [2, 8, 8, 8], using: &rng) }
        let w = Tensor(randomNormal: [16, 8, 4, 4], using: &rng)
        let serial = try inputs.map { try conv2d($0, weight: w, stride: 2, padding: 1).scalars }
        let results = Locked<[Int: [Float]]>([:])
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            let y = try? conv2d(inputs[i % 4], weight: w, stride: 2, padding: 1)
            results.withLock { $0[i] = y?.scalars }
        }
        let all = results.withLock { $0 }
        for i in 0..<16 { #expect(all[i] == serial[i % 4], "execution \(i)") }
    }

    @Test func noReferenceImplementationForDCGANLayers() throws {
        // DCGAN-32 at batch 64: D's convolutions 3 -> 64 (32x32 -> 16x16) and 64 -> 128
        // (16x16 -> 8x8), G's transposed convolutions back, and a 1024 -> 784 linear; forward and
        // both backward kernels of each.
        var rng = PhiloxRandom(seed: 42)
        let layers: [(x: [Int], w: [Int])] = [([64, 3, 32, 32], [64, 3, 4, 4]), ([64, 64, 16, 16], [128, 64, 4, 4])]
        for layer in layers {
            let x = Tensor(randomNormal: layer.x, std: 0.1, using: &rng).requiringGradients()
            let w = Tensor(randomNormal: layer.w, std: 0.02, using: &rng).requiringGradients()
            let y = try conv2d(x, weight: w, stride: 2, padding: 1)
            _ = try gradients(of: y, wrt: [x, w], seed: y)
            let z = try convTranspose2d(y.detached().requiringGradients(), weight: w, stride: 2, padding: 1)
            #expect(z.shape == layer.x)
            _ = try gradients(of: z, wrt: [w], seed: z)
        }
        let h = Tensor(randomNormal: [64, 1024], using: &rng).requiringGradients()
        let lw = Tensor(randomNormal: [784, 1024], std: 0.02, using: &rng).requiringGradients()
        let out = try linear(h, weight: lw)
        _ = try gradients(of: out, wrt: [h, lw], seed: out)

        let dcgan = DNNLDiagnostics.choices.filter { choice in
            layers.contains { choice.primitive.contains("x \(describe($0.x)) w \(describe($0.w))") }
                || choice.primitive.hasPrefix("matmul m 64 k 1024 n 784")
        }
        let kinds = Set(dcgan.map { String($0.primitive.prefix { $0 != " " }) })
        #expect(kinds == ["conv.forward", "conv.backward_data", "conv.backward_weights", "matmul"])
        #expect(dcgan.count >= 7)
        for choice in dcgan { #expect(!choice.isReference, "\(choice)") }
    }

    @Test func shapeErrorsNameBothShapes() throws {
        let x = Tensor(zeros: [1, 3, 4, 4])
        #expect(throws: TensorError("conv2d: input [1, 3, 4, 4] has 3 channels but weight [2, 5, 3, 3] expects 5")) {
            try conv2d(x, weight: Tensor(zeros: [2, 5, 3, 3]))
        }
        #expect(throws: TensorError("conv2d: kernel 5x5 of weight [2, 3, 5, 5] with dilation (1, 1) is larger than input [1, 3, 4, 4] padded by (0, 0)")) {
            try conv2d(x, weight: Tensor(zeros: [2, 3, 5, 5]))
        }
        #expect(throws: TensorError("conv2d: kernel 3x3 of weight [2, 3, 3, 3] with dilation (2, 2) is larger than input [1, 3, 4, 4] padded by (0, 0)")) {
            try conv2d(x, weight: Tensor(zeros: [2, 3, 3, 3]), dilation: 2)
        }
        #expect(throws: TensorError("conv2d: bias [3] does not match weight [2, 3, 3, 3]; expected [2]")) {
            try conv2d(x, weight: Tensor(zeros: [2, 3, 3, 3]), bias: Tensor(zeros: [3]))
        }
        #expect(throws: TensorError("conv2d: input [3, 4, 4] must be [N, C, H, W] and weight [2, 3, 3, 3] [O, C, KH, KW]")) {
            try conv2d(Tensor(zeros: [3, 4, 4]), weight: Tensor(zeros: [2, 3, 3, 3]))
        }
        #expect(throws: TensorError("conv2d: stride (0, 0) must be positive")) {
            try conv2d(x, weight: Tensor(zeros: [2, 3, 3, 3]), stride: 0)
        }
        #expect(throws: TensorError("convTranspose2d: input [1, 3, 4, 4] has 3 channels but weight [2, 3, 4, 4] expects 2")) {
            try convTranspose2d(x, weight: Tensor(zeros: [2, 3, 4, 4]))
        }
        #expect(throws: TensorError("convTranspose2d: output padding (2, 2) must be non-negative and smaller than stride (2, 2)")) {
            try convTranspose2d(x, weight: Tensor(zeros: [3, 2, 4, 4]), stride: 2, outputPadding: 2)
        }
        #expect(throws: TensorError("convTranspose2d: bias [3] does not match weight [3, 2, 4, 4]; expected [2]")) {
            try convTranspose2d(x, weight: Tensor(zeros: [3, 2, 4, 4]), bias: Tensor(zeros: [3]))
        }
        #expect(throws: TensorError("convTranspose2d: input [1, 3, 1, 1] with weight [3, 2, 1, 1] and padding (1, 1) gives an empty output")) {
            try convTranspose2d(Tensor(zeros: [1, 3, 1, 1]), weight: Tensor(zeros: [3, 2, 1, 1]), padding: 1)
        }
    }
}


@Suite struct RuntimeSettingsTests {
    @Test func changingThreadCountKeepsResultsCorrect() throws {
        let previous = Runtime.threads
        defer { Runtime.configure(threads: previous) }
        var rng = PhiloxRandom(seed: 43)
        let x = Tensor(randomNormal: [2, 4, 6, 6], using: &rng)
        let w = Tensor(randomNormal: [3, 4, 3, 3], using: &rng)
        let expected = naiveConv2d(x, w, nil, stride: (1, 1), padding: (1, 1), dilation: (1, 1)).values
        for threads in [1, 2] {
            Runtime.configure(threads: threads)
            #expect(Runtime.threads == threads)
            expectClose(try conv2d(x, weight: w, padding: 1).scalars, expected)
        }
    }
}
