import CDNNL
import GANFlowTestSupport
import Testing
@testable import TensorRuntime

/// A strided convolution's input gradient computed as one forward convolution per phase of dx's
/// rows and columns (`BackwardDataPhases`), against a float64 sum over the same inputs rounded to
/// bf16 as the kernels round them. The kernels accumulate in fp32: the tolerance is 1e-4 of the
/// largest magnitude.
@Suite(.enabled(if: bf16Unavailable == nil, Comment(rawValue: bf16Unavailable ?? "")))
struct BackwardDataPhasesTests {
    typealias Case = WeightGradientAsForwardTests.Case

    static let cases: [Case] = [
        // DCGAN-32's third discriminator layer (and second generator layer), small.
        Case(x: [4, 32, 8, 8], w: [48, 32, 4, 4], stride: [2, 2], padding: [1, 1], dilation: [1, 1], exact: true),
        // No padding, and padding 2 (both phases then start at a full window).
        Case(x: [2, 16, 10, 10], w: [16, 16, 4, 4], stride: [2, 2], padding: [0, 0], dilation: [1, 1], exact: true),
        Case(x: [2, 16, 8, 8], w: [16, 16, 4, 4], stride: [2, 2], padding: [2, 2], dilation: [1, 1], exact: true),
        // One tap per phase.
        Case(x: [2, 16, 8, 8], w: [32, 16, 2, 2], stride: [2, 2], padding: [0, 0], dilation: [1, 1], exact: true),
        // An odd dx: phase 0 has one row and column more than phase 1.
        Case(x: [2, 16, 9, 9], w: [16, 16, 4, 4], stride: [2, 2], padding: [1, 1], dilation: [1, 1], exact: true),
        // Non-square, with different strides, kernels and paddings per axis: six phases.
        Case(x: [2, 16, 8, 12], w: [24, 16, 4, 6], stride: [2, 3], padding: [1, 2], dilation: [1, 1], exact: true),
        // A kernel that is not a multiple of the stride, and a padding that leaves a phase
        // without its first tap's rows (negative padding): not available.
        Case(x: [2, 16, 9, 9], w: [16, 16, 3, 3], stride: [2, 2], padding: [1, 1], dilation: [1, 1], exact: false),
        Case(x: [2, 16, 8, 8], w: [16, 16, 4, 4], stride: [2, 2], padding: [3, 3], dilation: [1, 1], exact: false),
    ]

    static let channelsLast = ConvStorage(input: .channelsLast, output: .channelsLast, kernelChannelsLast: true)

    /// dx[n, c, y, x] = sum over (o, i, j) of dy[n, o, p, q] w[o, c, i, j] where y = s p + i - l and
    /// x = s q + j - l, in float64 over bf16-rounded operands.
    static func reference(_ dy: Tensor, _ w: Tensor, _ g: ConvGeometry) -> [Double] {
        let dys = dy.contiguousData().scalars.map(WeightGradientAsForwardTests.bf16)
        let ws = w.contiguousData().scalars.map(WeightGradientAsForwardTests.bf16)
        let (n, c, h, wd) = (g.input[0], g.input[1], g.input[2], g.input[3])
        let (o, kh, kw, oh, ow) = (g.weight[0], g.weight[2], g.weight[3], g.output[2], g.output[3])
        var dx = [Double](repeating: 0, count: n * c * h * wd)
        for b in 0..<n { for p in 0..<oh { for q in 0..<ow { for i in 0..<kh { for j in 0..<kw {
            let y = g.stride[0] * p + i - g.padding[0], x = g.stride[1] * q + j - g.padding[1]
            guard y >= 0, y < h, x >= 0, x < wd else { continue }
            for oo in 0..<o {
                let d = dys[((b * o + oo) * oh + p) * ow + q]
                for cc in 0..<c { dx[((b * c + cc) * h + y) * wd + x] += d * ws[((oo * c + cc) * kh + i) * kw + j] }
            }
        } } } } }
        return dx
    }

    static func largestDifference(_ dx: Tensor, _ expected: [Double]) -> (error: Double, scale: Double) {
        let error = zip(dx.contiguousData().scalars, expected).map { abs(Double($0) - $1) }.max()!
        return (error, expected.map(abs).max()!)
    }

    /// The phases wherever they are exact, from dy stored channels last, read as f32 and from its
    /// bf16 copy; dx comes out stored channels last, with dy's copy for the weight gradient.
    @Test(arguments: cases)
    func phasesMatchFloat64OverRoundedInputs(_ t: Case) throws {
        let g = t.geometry
        var rng = PhiloxRandom(seed: 31)
        let dy = Tensor(randomNormal: g.output, using: &rng).stored(.channelsLast)
        let w = Tensor(randomNormal: g.weight, std: 0.1, using: &rng)
        try ComputePrecision.with(.bf16) {
            let phases = ConvolutionPrimitives.backwardDataAsPhases(g, pays: false, layouts: Self.channelsLast)
            #expect((phases != nil) == t.exact)
            guard let phases else { return }
            #expect(phases.phases.count == g.stride[0] * g.stride[1])
            for phase in phases.phases {
                #expect(phase.primitive.implementation.contains("bf16"), "\(phase.primitive.implementation)")
            }
            let expected = Self.reference(dy, w, g)
            let kept = dy.copy().stored(.channelsLast)
            try keepBF16ChannelsLastCopy(of: kept) { bfloat16Round(kept.data, into: $0, count: kept.count) }
            for (name, source) in [("f32", dy), ("bf16 copy", kept)] {
                let (dx, copies) = try ConvolutionKernels.phasedBackwardData(source, w, phases)
                #expect(dx.isChannelsLastDense)
                #expect(copies.output != nil)
                let (error, scale) = Self.largestDifference(dx, expected)
                #expect(error <= 1e-4 * scale, "\(name): largest difference \(error) of \(scale)")
            }
        }
    }

    /// A weight that keeps layout copies keeps its sub-kernels until it changes: the second call
    /// reads them, and after an update (values written, copies dropped) the new values count.
    /// Without kept copies (the other tests), each call makes them afresh.
    @Test func subKernelsAreKeptUntilTheWeightChanges() throws {
        let g = Self.cases[0].geometry
        var rng = PhiloxRandom(seed: 32)
        let dy = Tensor(randomNormal: g.output, using: &rng).stored(.channelsLast)
        let w = Tensor(randomNormal: g.weight, std: 0.1, using: &rng)
        w.keepLayoutCopies()
        try ComputePrecision.with(.bf16) {
            let phases = try #require(ConvolutionPrimitives.backwardDataAsPhases(g, pays: false, layouts: Self.channelsLast))
            let first = try ConvolutionKernels.phasedBackwardData(dy, w, phases).0
            // With each phase's sub-kernel in its kernel's layout, so that later calls reorder nothing.
            let kept = try #require(w.layoutCopies?.copy(matching: try phases.subKernelsDescriptor))
            #expect(kept.parts.count == phases.phases.count)
            let again = try ConvolutionKernels.phasedBackwardData(dy, w, phases).0
            #expect(first.contiguousData().scalars == again.contiguousData().scalars)
            let p = w.data
            for i in 0..<w.count { p[i] = -p[i] }
            w.dropLayoutCopies()
            let negated = try ConvolutionKernels.phasedBackwardData(dy, w, phases).0
            let (error, scale) = Self.largestDifference(negated, Self.reference(dy, w, g))
            #expect(error <= 1e-4 * scale, "after the update: largest difference \(error) of \(scale)")
        }
    }

    /// Where they pay: dy of 4x4 at stride 2 (DCGAN-32's and DCGAN-64's last discriminator layer,
    /// first transposed generator layer), not 8x8 or larger, not stride 1.
    @Test func payOnlyWhereMeasuredFaster() {
        func g(_ x: [Int], _ w: [Int], _ out: Int, stride: Int, padding: Int) -> ConvGeometry {
            ConvGeometry(input: x, weight: w, output: [x[0], w[0], out, out], stride: [stride, stride],
                         padding: [padding, padding], dilation: [1, 1])
        }
        #expect(g([64, 128, 8, 8], [256, 128, 4, 4], 4, stride: 2, padding: 1).backwardDataPhasesPay)
        #expect(g([64, 256, 8, 8], [512, 256, 4, 4], 4, stride: 2, padding: 1).backwardDataPhasesPay)
        #expect(!g([64, 128, 16, 16], [256, 128, 4, 4], 8, stride: 2, padding: 1).backwardDataPhasesPay)
        #expect(!g([64, 64, 16, 16], [128, 64, 4, 4], 8, stride: 2, padding: 1).backwardDataPhasesPay)
        #expect(!g([64, 64, 32, 32], [128, 64, 4, 4], 16, stride: 2, padding: 1).backwardDataPhasesPay)
        #expect(!g([32, 128, 4, 4], [128, 128, 3, 3], 4, stride: 1, padding: 1).backwardDataPhasesPay)
    }

    /// Through autograd in a DCGAN's channels-last bf16 scope, at a geometry where they pay: the
    /// input gradient of conv2d (first order and recorded, a gradient penalty's path) and the
    /// forward of convTranspose2d agree with the reference, and its weight gradient with the
    /// ordinary reference, so the copy of dy handed on is the right one. Off AMX the phases are
    /// what runs; with AMX, oneDNN's own AMX kernel stays (unmeasured against the phases).
    @Test func throughConvolutionsInTheChannelsLastScope() throws {
        let g = Case(x: [16, 64, 8, 8], w: [128, 64, 4, 4], stride: [2, 2], padding: [1, 1], dilation: [1, 1], exact: true).geometry
        var rng = PhiloxRandom(seed: 33)
        let x = Tensor(randomNormal: g.input, using: &rng).requiringGradients()
        let w = Tensor(randomNormal: g.weight, std: 0.1, using: &rng).requiringGradients()
        let dy = Tensor(randomNormal: g.output, using: &rng)
        let expected = Self.reference(dy, w, g)
        let expectedDW = WeightGradientAsForwardTests.reference(x, dy, g)
        try ComputePrecision.with(.bf16) {
            try ActivationLayout.storingConvolutionResultsChannelsLast {
                let phases = ConvolutionPrimitives.backwardDataAsPhases(g, layouts: Self.channelsLast)
                #expect((phases != nil) == (DNNLDiagnostics.effectiveISA != "avx512_core_amx"))
                let y = try conv2d(x, weight: w, stride: 2, padding: 1)
                let both = try gradients(of: y, wrt: [x, w], seed: dy)
                let recorded = try gradients(of: y, wrt: [x], seed: dy, createGraph: true)[0]
                let image = try convTranspose2d(dy.stored(.channelsLast), weight: w, stride: 2, padding: 1)
                for (name, dx) in [("conv2d's dx", both[0]), ("conv2d's dx, recorded", recorded), ("convTranspose2d", image)] {
                    let (error, scale) = Self.largestDifference(dx, expected)
                    #expect(error <= 1e-4 * scale, "\(name): largest difference \(error) of \(scale)")
                }
                let dwError = zip(both[1].scalars, expectedDW).map { abs(Double($0) - $1) }.max()!
                #expect(dwError <= 1e-4 * expectedDW.map(abs).max()!, "conv2d's dw: largest difference \(dwError)")
            }
        }
    }
}
