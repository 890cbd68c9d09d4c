import CDNNL
import GANFlowTestSupport
import Testing
@testable import TensorRuntime

/// A convolution's weight gradient computed as a forward convolution with the batch and channel
/// axes swapped (`weightGradientAsForward`), against a float64 sum over the same inputs rounded
/// as the kernel rounds them (to bf16, nearest even, in bf16; not at all in fp32).
///
/// The kernel accumulates in fp32, so it must match the float64 sum of the rounded products to
/// fp32 accumulation error: the tolerance is 1e-4 of the largest magnitude.
@Suite(.enabled(if: bf16Unavailable == nil, Comment(rawValue: bf16Unavailable ?? "")))
struct WeightGradientAsForwardTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let x: [Int], w: [Int], stride: [Int], padding: [Int], dilation: [Int]
        /// Whether the swapped kernel is exact here (a right padding that is not negative).
        let exact: Bool
        var testDescription: String { "x \(x) w \(w) stride \(stride) padding \(padding) dilation \(dilation)" }

        var geometry: ConvGeometry {
            let out = (0..<2).map { (a: Int) -> Int in
                let extent = dilation[a] * (w[2 + a] - 1) + 1
                return (x[2 + a] + 2 * padding[a] - extent) / stride[a] + 1
            }
            return ConvGeometry(input: x, weight: w, output: [x[0], w[0]] + out, stride: stride, padding: padding, dilation: dilation)
        }
    }

    static let cases: [Case] = [
        // DCGAN's middle layers, small.
        Case(x: [4, 16, 16, 16], w: [32, 16, 4, 4], stride: [2, 2], padding: [1, 1], dilation: [1, 1], exact: true),
        // StyleGAN2's downsampling convolution after the FIR filter (17x17 to 8x8, no padding).
        Case(x: [3, 32, 17, 17], w: [16, 32, 3, 3], stride: [2, 2], padding: [0, 0], dilation: [1, 1], exact: true),
        // Non-square, with different strides and paddings per axis, and a row the window never reaches.
        Case(x: [2, 16, 9, 12], w: [24, 16, 3, 5], stride: [2, 3], padding: [1, 2], dilation: [1, 1], exact: true),
        // Dilated: the swapped convolution then has stride 2.
        Case(x: [2, 16, 11, 11], w: [16, 16, 3, 3], stride: [2, 2], padding: [1, 1], dilation: [2, 2], exact: true),
        // Stride 1, and few input channels.
        Case(x: [2, 16, 8, 8], w: [16, 16, 3, 3], stride: [1, 1], padding: [1, 1], dilation: [1, 1], exact: true),
        Case(x: [4, 3, 16, 16], w: [16, 3, 4, 4], stride: [2, 2], padding: [1, 1], dilation: [1, 1], exact: true),
        // The right padding would be negative (two rows never reached): not available.
        Case(x: [2, 16, 7, 7], w: [16, 16, 2, 2], stride: [3, 3], padding: [0, 0], dilation: [1, 1], exact: false),
    ]

    /// `v` rounded to bf16 (to nearest, ties to even), as oneDNN's conversion does.
    static func bf16(_ v: Float) -> Double {
        let bits = v.bitPattern
        return Double(Float(bitPattern: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000))
    }

    /// dw[o, c, i, j] = sum over (n, p, q) of x[n, c, s p + d i - l, s q + d j - l] dy[n, o, p, q],
    /// in float64 over bf16-rounded operands.
    static func reference(_ x: Tensor, _ dy: Tensor, _ g: ConvGeometry, round: (Float) -> Double = bf16) -> [Double] {
        let xs = x.scalars.map(round), dys = dy.scalars.map(round)
        let (n, c, h, w) = (g.input[0], g.input[1], g.input[2], g.input[3])
        let (o, kh, kw, oh, ow) = (g.weight[0], g.weight[2], g.weight[3], g.output[2], g.output[3])
        var dw = [Double](repeating: 0, count: o * c * kh * kw)
        xs.withUnsafeBufferPointer { xp in dys.withUnsafeBufferPointer { dp in dw.withUnsafeMutableBufferPointer { wp in
            for b in 0..<n { for p in 0..<oh { for q in 0..<ow { for i in 0..<kh { for j in 0..<kw {
                let r = g.stride[0] * p + g.dilation[0] * i - g.padding[0]
                let s = g.stride[1] * q + g.dilation[1] * j - g.padding[1]
                guard r >= 0, r < h, s >= 0, s < w else { continue }
                for cc in 0..<c {
                    let xv = xp[((b * c + cc) * h + r) * w + s]
                    for oo in 0..<o {
                        wp[((oo * c + cc) * kh + i) * kw + j] += xv * dp[((b * o + oo) * oh + p) * ow + q]
                    }
                }
            } } } } }
        } } }
        return dw
    }

    /// The swapped kernel, wherever it is exact, in bf16 and fp32.
    @Test(arguments: cases)
    func swappedKernelMatchesFloat64OverRoundedInputs(_ t: Case) throws {
        let g = t.geometry
        var rng = PhiloxRandom(seed: 21)
        let x = Tensor(randomNormal: g.input, using: &rng)
        let dy = Tensor(randomNormal: g.output, using: &rng)
        for precision in ComputePrecision.allCases {
            try ComputePrecision.with(precision) {
                let primitive = ConvolutionPrimitives.weightGradientAsForward(g, pays: false)
                #expect((primitive != nil) == t.exact)
                guard let primitive else { return }
                #expect(primitive.implementation.contains(precision == .bf16 ? "bf16" : "avx") || precision == .fp32,
                        "\(precision): \(primitive.implementation)")
                let dw = try ConvolutionKernels.swappedWeightGradient(x, dy, g, primitive)
                let expected = precision == .bf16 ? Self.reference(x, dy, g) : Self.reference(x, dy, g, round: { Double($0) })
                let scale = expected.map(abs).max()!
                let error = zip(dw.scalars, expected).map { abs(Double($0) - $1) }.max()!
                #expect(error <= 1e-4 * scale, "\(precision): largest difference \(error) of \(scale)")
            }
        }
    }

    /// In bf16 from x and dy stored channels last (as DCGAN's activations are), through the
    /// blocked layouts the kernel then takes, reading the f32 values or their bf16 copies.
    /// (At DCGAN's second layer, batch 16, the kernel is `jit_bf16` on the blocked layouts.)
    @Test(arguments: cases.filter { $0.exact && $0.x[1] > 1 }
            + [Case(x: [16, 64, 16, 16], w: [128, 64, 4, 4], stride: [2, 2], padding: [1, 1], dilation: [1, 1], exact: true)])
    func swappedKernelReadsChannelsLastTensors(_ t: Case) throws {
        guard bf16Unavailable == nil else { return }
        let g = t.geometry
        var rng = PhiloxRandom(seed: 23)
        let x = Tensor(randomNormal: g.input, using: &rng).stored(.channelsLast)
        let dy = Tensor(randomNormal: g.output, using: &rng).stored(.channelsLast)
        let expected = Self.reference(x.contiguousData(), dy.contiguousData(), g)
        let scale = expected.map(abs).max()!
        try ComputePrecision.with(.bf16) {
            let layouts = ConvStorage(input: x.storageLayout!, output: dy.storageLayout!, kernelChannelsLast: true)
            let primitive = try #require(ConvolutionPrimitives.weightGradientAsForward(g, pays: false, layouts: layouts))
            // (With AMX, oneDNN's AMX kernel where it offers one first: `KernelPreference`.)
            if g.input[0] == 16 && DNNLDiagnostics.effectiveISA != "avx512_core_amx" {
                #expect(primitive.implementation.hasPrefix("jit_bf16"), "\(primitive.implementation)")
            }
            func copy(_ t: Tensor) throws -> LayoutCopy? {
                guard t.isChannelsLastDense else { return nil }
                let kept = t.copy().stored(.channelsLast)
                try keepBF16ChannelsLastCopy(of: kept) { bfloat16Round(kept.data, into: $0, count: kept.count) }
                return kept.layoutCopies?.copy(matching: try DNNLContext.channelsLastDesc(t.shape, type: dnnl_bf16))
            }
            for prepared in [ConvCopies(), ConvCopies(input: try copy(x), output: try copy(dy))] {
                let dw = try ConvolutionKernels.swappedWeightGradient(x, dy, g, primitive, prepared: prepared)
                let error = zip(dw.scalars, expected).map { abs(Double($0) - $1) }.max()!
                #expect(error <= 1e-4 * scale, "\(primitive.implementation): largest difference \(error) of \(scale)")
            }
        }
    }

    /// Where it pays: DCGAN's stride-2 layers at batch 64, not StyleGAN2's at batch 32, not
    /// stride 1, not the 1- and 3-channel image layers.
    @Test func paysOnlyWhereMeasuredFaster() {
        func g(_ x: [Int], _ w: [Int], _ out: Int, stride: Int, padding: Int) -> ConvGeometry {
            ConvGeometry(input: x, weight: w, output: [x[0], w[0], out, out], stride: [stride, stride],
                         padding: [padding, padding], dilation: [1, 1])
        }
        #expect(g([64, 64, 16, 16], [128, 64, 4, 4], 8, stride: 2, padding: 1).swappedWeightGradientPays)
        #expect(g([64, 128, 8, 8], [256, 128, 4, 4], 4, stride: 2, padding: 1).swappedWeightGradientPays)
        #expect(g([64, 256, 8, 8], [512, 256, 4, 4], 4, stride: 2, padding: 1).swappedWeightGradientPays)
        #expect(!g([64, 1, 32, 32], [64, 1, 4, 4], 16, stride: 2, padding: 1).swappedWeightGradientPays)
        #expect(!g([32, 64, 17, 17], [64, 64, 3, 3], 8, stride: 2, padding: 0).swappedWeightGradientPays)
        #expect(!g([32, 64, 9, 9], [64, 64, 3, 3], 4, stride: 2, padding: 0).swappedWeightGradientPays)
        #expect(!g([32, 128, 8, 8], [128, 128, 3, 3], 8, stride: 1, padding: 1).swappedWeightGradientPays)
    }

    /// Through autograd, at a geometry where it pays (DCGAN's second layer at batch 16): the
    /// weight gradient of conv2d and of convTranspose2d in bf16, first order and recorded (a
    /// gradient penalty's path), agree with the reference.
    @Test func throughConvolutionsAndTheirRecordedBackward() throws {
        let g = Case(x: [16, 64, 16, 16], w: [128, 64, 4, 4], stride: [2, 2], padding: [1, 1], dilation: [1, 1], exact: true).geometry
        #expect(g.swappedWeightGradientPays)
        var rng = PhiloxRandom(seed: 22)
        let x = Tensor(randomNormal: g.input, using: &rng).requiringGradients()
        let w = Tensor(randomNormal: g.weight, std: 0.1, using: &rng).requiringGradients()
        let dy = Tensor(randomNormal: g.output, using: &rng).requiringGradients()
        let expected = Self.reference(x, dy, g)
        let scale = expected.map(abs).max()!
        try ComputePrecision.with(.bf16) {
            // With x's gradient wanted too, the weight gradient's reorders read both the forward's
            // bf16 copy of x and the backward-data kernel's copy of dy; without, only the first.
            let y = try conv2d(x, weight: w, stride: 2, padding: 1)
            let both = try gradients(of: y, wrt: [x, w], seed: dy)[1]
            let first = try gradients(of: y, wrt: [w], seed: dy)[0]
            let recorded = try gradients(of: y, wrt: [w], seed: dy, createGraph: true)[0]
            // convTranspose2d(dy) with the same weight is the adjoint: its weight gradient for seed x is the same dw.
            let z = try convTranspose2d(dy, weight: w, stride: 2, padding: 1)
            let adjoint = try gradients(of: z, wrt: [dy, w], seed: x)[1]
            let adjointOnly = try gradients(of: z, wrt: [w], seed: x)[0]
            for (name, dw) in [("conv2d, with dx", both), ("conv2d", first), ("conv2d, recorded", recorded),
                               ("convTranspose2d, with its dx", adjoint), ("convTranspose2d", adjointOnly)] {
                let error = zip(dw.scalars, expected).map { abs(Double($0) - $1) }.max()!
                #expect(error <= 1e-4 * scale, "\(name): largest difference \(error) of \(scale)")
            }
        }
    }
}
