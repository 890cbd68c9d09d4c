import GANFlowTestSupport
import Testing
@testable import TensorRuntime

/// [N, C, H, W] tensors stored channels last (`Tensor.storageLayout`), as bf16 convolutions
/// write them: every op gives the values it gives on the same values stored contiguously.
struct ChannelsLastTrainingTests {
    /// `t`'s values stored channels last (a different tensor from `t`, same values).
    static func channelsLast(_ t: Tensor) -> Tensor {
        let out = t.stored(.channelsLast)
        #expect(out.isChannelsLastDense && !out.isContiguous)
        return out
    }

    @Test func storageOrdersConvertBothWays() throws {
        var rng = PhiloxRandom(seed: 21)
        let x = Tensor(randomNormal: [3, 32, 5, 7], using: &rng)
        let last = Self.channelsLast(x)
        #expect(last.scalars == x.scalars)
        #expect(last.contiguousData().isContiguous && last.contiguousData().scalars == x.scalars)
        // Element (n, c, h, w) lies at n H W C + (h W + w) C + c.
        #expect(last.data[((1 * 5 + 2) * 7 + 3) * 32 + 4] == x.data[((1 * 32 + 4) * 5 + 2) * 7 + 3])
        // One channel: contiguous is channels last already.
        let one = Tensor(randomNormal: [2, 1, 4, 4], using: &rng)
        #expect(one.stored(.channelsLast) === one)
    }

    /// Batch norm with a leaky ReLU, forward and first-order gradients, training and evaluation.
    @Test(arguments: [32, 24])
    func batchNormReadsChannelsLast(channels: Int) throws {
        var rng = PhiloxRandom(seed: 22)
        let x = Tensor(randomNormal: [4, channels, 6, 5], using: &rng).requiringGradients()
        let gamma = Tensor(randomNormal: [channels], using: &rng).requiringGradients()
        let beta = Tensor(randomNormal: [channels], using: &rng).requiringGradients()
        let seed = Tensor(randomNormal: [4, channels, 6, 5], using: &rng)
        let runningMean = Tensor(randomNormal: [channels], using: &rng).scalars
        for training in [true, false] {
            func run(_ input: Tensor, _ g: Tensor) throws -> [Tensor] {
                let rm = try Tensor(shape: [channels], scalars: runningMean), rv = Tensor(repeating: 1.5, shape: [channels])
                let y = try input.batchNorm(weight: gamma, bias: beta, runningMean: rm, runningVar: rv,
                                            training: training, leakySlope: 0.2)
                return [y] + (try gradients(of: y, wrt: [input, gamma, beta], seed: g))
            }
            let plain = try run(x, seed)
            let xl = Self.channelsLast(x.detached()).requiringGradients()
            let last = try run(xl, Self.channelsLast(seed))
            #expect(last[0].isChannelsLastDense && last[1].isChannelsLastDense)
            for (a, b) in zip(last, plain) {
                let scale = b.scalars.map(abs).max()!
                let error = zip(a.scalars, b.scalars).map { abs($0 - $1) }.max()!
                #expect(error <= 1e-5 * scale, "training \(training): off by \(error) of \(scale)")
            }
        }
    }

    /// On rows of channels (the channels-last path, C a multiple of 16) the fused batch norm and
    /// activation give the values and first-order gradients of batch norm and then the
    /// activation, bit for bit, for negative scales and slopes of 0 and above 1 too.
    @Test(arguments: [Float(0.2), 0, 1.5])
    func fusedBatchNormOnRowsIsTheSeparateOpsBitForBit(slope: Float) throws {
        var rng = PhiloxRandom(seed: 24)
        let channels = 48
        let x = Self.channelsLast(Tensor(randomNormal: [5, channels, 4, 3], mean: 0.3, std: 2, using: &rng))
        let gamma = Tensor(randomUniform: [channels], low: -1.5, high: 1.5, using: &rng).requiringGradients()
        let beta = Tensor(randomNormal: [channels], using: &rng).requiringGradients()
        let seed = Self.channelsLast(Tensor(randomNormal: [5, channels, 4, 3], using: &rng))
        for training in [true, false] {
            func run(fused: Bool) throws -> [[Float]] {
                let input = x.detached().requiringGradients()
                let rm = Tensor(repeating: 0.1, shape: [channels]), rv = Tensor(repeating: 1.5, shape: [channels])
                let y = fused
                    ? try input.batchNorm(weight: gamma, bias: beta, runningMean: rm, runningVar: rv, training: training,
                                          leakySlope: slope)
                    : try input.batchNorm(weight: gamma, bias: beta, runningMean: rm, runningVar: rv, training: training)
                        .leakyRelu(negativeSlope: slope)
                #expect(y.isChannelsLastDense)
                return ([y] + (try gradients(of: y, wrt: [input, gamma, beta], seed: seed))).map(\.scalars)
            }
            let fused = try run(fused: true), separate = try run(fused: false)
            #expect(fused == separate, "slope \(slope), training \(training)")
            #expect(fused[1].contains { $0 != 0 })
        }
    }

    /// Sums over rows of channels are the same bits on one thread and on three.
    @Test func batchNormSumsAreBitIdenticalOverThreadCounts() throws {
        var rng = PhiloxRandom(seed: 23)
        let x = Self.channelsLast(Tensor(randomNormal: [8, 64, 32, 32], using: &rng)).requiringGradients()
        let seed = Self.channelsLast(Tensor(randomNormal: [8, 64, 32, 32], using: &rng))
        func run() throws -> [[Float]] {
            let y = try x.batchNorm(weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true, leakySlope: 0.2)
            return ([y] + (try gradients(of: y, wrt: [x], seed: seed))).map(\.scalars)
        }
        let one = try ParallelLoop.withThreads(1) { try run() }
        let three = try ParallelLoop.withThreads(3) { try run() }
        #expect(one == three)
    }

    /// Addition and the leaky-ReLU gradient of two tensors stored channels last work as they lie
    /// and keep that order; mixed orders give the same values.
    @Test func elementwiseOpsKeepTheOrder() throws {
        var rng = PhiloxRandom(seed: 24)
        let a = Tensor(randomNormal: [2, 16, 3, 3], using: &rng), b = Tensor(randomNormal: [2, 16, 3, 3], using: &rng)
        let al = Self.channelsLast(a), bl = Self.channelsLast(b)
        let sum = try al + bl
        #expect(sum.isChannelsLastDense)
        #expect(sum.scalars == (try a + b).scalars)
        #expect((try al + b).scalars == (try a + b).scalars)
        let g = try leakyGradient(al, output: bl, slope: 0.2, gain: 1)
        #expect(g.isChannelsLastDense)
        #expect(g.scalars == (try leakyGradient(a, output: b, slope: 0.2, gain: 1)).scalars)
    }
}

/// bf16 convolutions writing channels last, inside small networks, against fp32.
@Suite(.enabled(if: bf16Unavailable == nil, Comment(rawValue: bf16Unavailable ?? "")))
struct ChannelsLastBF16Tests {
    /// conv -> batch norm + leaky ReLU -> transposed conv (with bias) -> conv -> conv, and a fully
    /// connected conv (a matrix product) of the same activation, and the gradients
    /// of every input, in bf16: inside `storingConvolutionResultsChannelsLast`, activations of
    /// 16 channels or more stored channels last (outside, none), and
    /// the values those of the channel-blocked kernels with [N, C, H, W] results (the same
    /// operands rounded to bf16; only the kernels' summation order differs), within 1e-4 of
    /// the largest magnitude.
    @Test func convolutionChainMatchesTheBlockedKernels() throws {
        var rng = PhiloxRandom(seed: 25)
        let x = Tensor(randomNormal: [4, 1, 16, 16], using: &rng).requiringGradients()
        let w1 = Tensor(randomNormal: [32, 1, 4, 4], std: 0.3, using: &rng).requiringGradients()
        let w2 = Tensor(randomNormal: [32, 48, 4, 4], std: 0.1, using: &rng).requiringGradients()
        let b2 = Tensor(randomNormal: [48], using: &rng).requiringGradients()
        let w3 = Tensor(randomNormal: [16, 48, 3, 3], std: 0.1, using: &rng).requiringGradients()
        let w4 = Tensor(randomNormal: [3, 16, 3, 3], std: 0.1, using: &rng).requiringGradients()
        let w5 = Tensor(randomNormal: [8, 16, 16, 16], std: 0.02, using: &rng).requiringGradients()
        var layouts: [Bool] = []
        func run() throws -> [Tensor] {
            try ComputePrecision.with(.bf16) {
                let h1 = try conv2d(x, weight: w1, stride: 2, padding: 1, leakySlope: 0.2)
                let h2 = try h1.batchNorm(weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true, leakySlope: 0.2)
                let h3 = try convTranspose2d(h2, weight: w2, bias: b2, stride: 2, padding: 1)
                let h4 = try conv2d(h3, weight: w3, padding: 1)
                let y = try conv2d(try h4 + h4, weight: w4, padding: 1)
                // A window over the whole input: a matrix product, reading h4 as it is stored.
                let score = try conv2d(h4, weight: w5)
                layouts = [h1, h2, h3, h4].map(\.isChannelsLastDense)
                return [y, score] + (try gradients(of: try y.square().sum() + score.square().sum(), wrt: [x, w1, w2, b2, w3, w4, w5]))
            }
        }
        let blocked = try run()
        #expect(layouts == [false, false, false, false])
        let last = try ActivationLayout.storingConvolutionResultsChannelsLast(run)
        #expect(layouts == [true, true, true, true])
        for (i, (a, b)) in zip(last, blocked).enumerated() {
            let error = BF16Tests.scaledError(a, b)
            #expect(error <= 1e-4, "result \(i): channels last is off the blocked kernels by \(error) of the largest magnitude")
        }
    }

    /// Inside `storingConvolutionResultsChannelsLast`, batch norm's result and input gradient (and
    /// the leaky-ReLU gradient) carry
    /// a bf16 copy in the layout the next convolution reads, and that convolution gives exactly
    /// what it gives reordering the f32 values itself (the same rounding to bf16).
    @Test func batchNormWritesTheNextConvolutionsBF16Copy() throws {
        var rng = PhiloxRandom(seed: 26)
        let x = ChannelsLastTrainingTests.channelsLast(Tensor(randomNormal: [4, 32, 8, 8], using: &rng)).requiringGradients()
        let w = Tensor(randomNormal: [48, 32, 4, 4], std: 0.1, using: &rng)
        let seed = ChannelsLastTrainingTests.channelsLast(Tensor(randomNormal: [4, 32, 8, 8], using: &rng))
        try ComputePrecision.with(.bf16) {
            try ActivationLayout.storingConvolutionResultsChannelsLast {
                let y = try x.batchNorm(weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true, leakySlope: 0.2)
                let dx = try gradients(of: y, wrt: [x], seed: seed)[0]
                // The leaky-ReLU gradient of a convolution's fused activation writes one too.
                let masked = try leakyGradient(seed, output: x.detached(), slope: 0.2, gain: 1)
                for t in [y, dx, masked] {
                    #expect(t.isChannelsLastDense && t.layoutCopies?.count == 1)
                    let withCopy = try conv2d(t, weight: w, stride: 2, padding: 1)
                    let without = try conv2d(t.detached(), weight: w, stride: 2, padding: 1)
                    #expect(without.scalars == withCopy.scalars)
                }
            }
        }
        // Outside it, no copy.
        let y = try ComputePrecision.with(.bf16) {
            try x.batchNorm(weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true, leakySlope: 0.2)
        }
        #expect(y.layoutCopies == nil)
    }
}
