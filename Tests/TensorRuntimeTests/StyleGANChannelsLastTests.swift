import GANFlowTestSupport
import Testing
@testable import TensorRuntime

/// StyleGAN2's ops on activations stored channels last (as its bf16 convolutions write them):
/// products and sums with a broadcast operand, sums over axes, bias and activation, the FIR
/// filter, forward and backward. Each gives the values it gives on the same values stored
/// contiguously, and keeps the order, so that no op between two convolutions converts.
struct StyleGANChannelsLastTests {
    static func channelsLast(_ t: Tensor) -> Tensor { ChannelsLastTrainingTests.channelsLast(t) }

    /// Whether `a` and `b` hold the same values, bit for bit (a boolean, so that a failure does
    /// not print every value).
    static func identical(_ a: Tensor, _ b: Tensor) -> Bool {
        a.shape == b.shape && a.scalars.map(\.bitPattern) == b.scalars.map(\.bitPattern)
    }

    /// The largest difference between `a` and `b`, relative to `b`'s largest magnitude.
    static func relativeError(_ a: Tensor, _ b: Tensor) -> Float {
        let scale = max(b.scalars.map(abs).max() ?? 0, 1e-30)
        return zip(a.scalars, b.scalars).map { abs($0 - $1) }.max()! / scale
    }

    /// Broadcast operands on either side give the same bits, stored channels last.
    @Test(arguments: [[2, 16, 1, 1], [16, 1, 1], [1, 16, 1, 1], [2, 1, 5, 3], [1], [1, 1, 5, 3]])
    func broadcastProductsAndSumsKeepTheOrder(other: [Int]) throws {
        var rng = PhiloxRandom(seed: 31)
        let x = Tensor(randomNormal: [2, 16, 5, 3], using: &rng), s = Tensor(randomNormal: other, using: &rng)
        let xl = Self.channelsLast(x)
        for (last, plain) in [(try xl * s, try x * s), (try s * xl, try s * x), (try xl + s, try x + s), (try s - xl, try s - x)] {
            #expect(last.isChannelsLastDense)
            #expect(Self.identical(last, plain))
        }
        let scaled = xl * 0.5
        #expect(scaled.isChannelsLastDense && Self.identical(scaled, x * 0.5))
    }

    /// Sums over any axes of a tensor stored channels last, against the contiguous sums; and
    /// their backward (`expanded`) gives the same values.
    @Test(arguments: [[0, 2, 3], [2, 3], [1], [0], [0, 1, 2, 3], [3], [1, 2]])
    func sumsOverAxes(axes: [Int]) throws {
        var rng = PhiloxRandom(seed: 32)
        let x = Tensor(randomNormal: [3, 24, 4, 5], using: &rng)
        let last = try Self.channelsLast(x).sum(axes: axes, keepDims: true)
        let plain = try x.sum(axes: axes, keepDims: true)
        #expect(last.shape == plain.shape && last.isContiguous)
        #expect(Self.relativeError(last, plain) < 1e-6, "axes \(axes)")
        #expect(try Self.channelsLast(x).sum(axes: axes).shape == x.sum(axes: axes).shape)
    }

    /// The gradient of a modulation's styles or a per-channel weight, summed while multiplied,
    /// is the same bits as the product followed by the sum, and close to the contiguous result.
    @Test(arguments: [[2, 16, 1, 1], [1, 16, 1, 1], [16, 1, 1]])
    func productSumsToChannels(target: [Int]) throws {
        var rng = PhiloxRandom(seed: 33)
        let a = Tensor(randomNormal: [2, 16, 6, 5], using: &rng), b = Tensor(randomNormal: [2, 16, 6, 5], using: &rng)
        let al = Self.channelsLast(a), bl = Self.channelsLast(b)
        let fused = try Tensor.productSum(al, bl, to: target)
        #expect(fused.shape == target)
        #expect(Self.identical(fused, try (al * bl).sumTo(target)))
        #expect(Self.relativeError(fused, try Tensor.productSum(a, b, to: target)) < 1e-6)
    }

    /// Bias and leaky ReLU: the same values, stored channels last, and gradients for x and the
    /// bias close to the contiguous ones.
    @Test(arguments: [true, false])
    func biasActivationKeepsTheOrder(withBias: Bool) throws {
        var rng = PhiloxRandom(seed: 34)
        let x = Tensor(randomNormal: [2, 32, 4, 4], using: &rng)
        let bias = withBias ? Tensor(randomNormal: [32], using: &rng).requiringGradients() : nil
        let seed = Tensor(randomNormal: [2, 32, 4, 4], using: &rng)
        func run(_ input: Tensor, _ g: Tensor) throws -> [Tensor] {
            let y = try biasActivation(input, bias: bias, gain: 1.5)
            return [y] + (try gradients(of: y, wrt: [input] + (bias.map { [$0] } ?? []), seed: g))
        }
        let plain = try run(x.requiringGradients(), seed)
        let last = try run(Self.channelsLast(x).requiringGradients(), Self.channelsLast(seed))
        #expect(last[0].isChannelsLastDense && last[1].isChannelsLastDense)
        #expect(Self.identical(last[0], plain[0]))
        #expect(Self.identical(last[1], plain[1]))
        if withBias { #expect(Self.relativeError(last[2], plain[2]) < 1e-6) }
    }

    /// The FIR filter's upsampling, downsampling and padded blur, forward and backward, on
    /// activations stored channels last, against the contiguous ones (whose width pass is a
    /// matrix product, summing in another order), on one thread and on three.
    @Test(arguments: [0, 1, 2, 3])
    func firFilterKeepsTheOrder(kind: Int) throws {
        var rng = PhiloxRandom(seed: 35 + UInt64(kind))
        let x = Tensor(randomNormal: [3, 16, 8, 8], using: &rng)
        func apply(_ t: Tensor) throws -> Tensor {
            switch kind {
            case 0: return try t.upsample2d()
            case 1: return try t.downsample2d()
            case 2: return try t.upfirdn2d(.binomial, padding: (2, 1))
            default: return try t.upfirdn2d(.binomial, up: 2, padding: (1, 0), gain: 4)
            }
        }
        let plainX = x.requiringGradients()
        let plain = try apply(plainX)
        let seed = Tensor(randomNormal: plain.shape, using: &rng)
        let lastX = Self.channelsLast(x).requiringGradients()
        func run(threads: Int) throws -> [Tensor] {
            try ParallelLoop.withThreads(threads) {
                let y = try apply(lastX)
                return [y, try gradients(of: y, wrt: [lastX], seed: Self.channelsLast(seed))[0]]
            }
        }
        let last = try run(threads: 1)
        #expect(last[0].shape == plain.shape && last[0].isChannelsLastDense && last[1].isChannelsLastDense)
        #expect(Self.relativeError(last[0], plain) < 1e-6)
        #expect(Self.relativeError(last[1], try gradients(of: plain, wrt: [plainX], seed: seed)[0]) < 1e-6)
        #expect(zip(try run(threads: 3), last).allSatisfy { Self.identical($0, $1) })
    }

    /// A modulated convolution's activation path (modulation, demodulation, noise, bias and
    /// activation) and its second-order gradients (R1's double backward) through ops that read
    /// channels last, against the same values stored contiguously.
    @Test func secondOrderGradientsThroughTheModulation() throws {
        var rng = PhiloxRandom(seed: 39)
        let x = Tensor(randomNormal: [2, 16, 4, 4], using: &rng)
        let styles = Tensor(randomNormal: [2, 16, 1, 1], using: &rng).requiringGradients()
        let noise = Tensor(randomNormal: [2, 1, 4, 4], using: &rng)
        let strength = Tensor(0.3).requiringGradients()
        let bias = Tensor(randomNormal: [16], using: &rng).requiringGradients()
        func run(_ input: Tensor) throws -> [Tensor] {
            let y = try biasActivation(try (input * styles).upsample2d().downsample2d() + noise * strength, bias: bias)
            let dx = try gradients(of: (y * y).sum(), wrt: [input], createGraph: true)[0]
            return try gradients(of: (dx * dx).sum(), wrt: [styles, strength, bias])
        }
        let plain = try run(x.requiringGradients())
        let last = try run(Self.channelsLast(x).requiringGradients())
        for (a, b) in zip(last, plain) { #expect(Self.relativeError(a, b) < 1e-5) }
    }
}
