import Testing
import NeuralNet
import TensorRuntime
import GANFlowTestSupport

/// `Sequential` runs a batch norm or convolution and the ReLU / leaky ReLU after it as one op
/// (`ActivationFusing`). A whole network through `Sequential.forward` must give the values and
/// parameter gradients of its layers run one by one.
@Suite struct ActivationFusingTests {
    static func layerByLayer(_ net: Sequential, _ x: Tensor, mode: ForwardMode) throws -> Tensor {
        var y = x
        for layer in net.layers { y = try layer.forward(y, mode: mode) }
        return y
    }

    /// `mode` is the same for both paths; `.sample` leaves spectral norm's vectors as they are, so
    /// that both paths see the same sigma.
    static func compare(_ net: Sequential, input: Tensor, mode: ForwardMode = .train) throws {
        let params = net.namedParameters.map(\.1)
        var results: [[[Float]]] = []
        for path in [{ try net.forward($0, mode: mode) }, { try Self.layerByLayer(net, $0, mode: mode) }] {
            let y = try path(input)
            var rng = PhiloxRandom(seed: 61)
            let r = Tensor(randomNormal: y.shape, using: &rng)
            let g = try gradients(of: try (y * r).sum(), wrt: params)
            results.append([y.scalars] + g.map(\.scalars))
        }
        for (a, b) in zip(results[0], results[1]) {
            let scale = max(b.map { abs($0) }.max() ?? 1, 1)
            #expect(largestDifference(a, b) <= 1e-5 * scale)
        }
    }

    @Test func dcganDiscriminatorAndGenerator() throws {
        var rng = PhiloxRandom(seed: 62)
        let D = try DCGAN.discriminator(channels: 1, resolution: 32, width: 8, rng: &rng)
        let G = try DCGAN.generator(latent: 16, channels: 1, resolution: 32, width: 8, rng: &rng)
        // Both have layers that fuse: D's convolutions and batch norms with their LeakyReLUs, G's batch norms with ReLUs.
        #expect(D.layers.contains { $0 is BatchNorm } && D.layers.contains { $0 is Conv2D })
        #expect(G.layers.contains { $0 is BatchNorm })
        try Self.compare(D, input: Tensor(randomNormal: [6, 1, 32, 32], using: &rng))
        try Self.compare(G, input: Tensor(randomNormal: [6, 16, 1, 1], using: &rng))
    }

    @Test func equalizedConvolutionBlock() throws {
        var rng = PhiloxRandom(seed: 63)
        let block = Sequential([EqualizedConv2D(3, 8, kernel: 3, rng: &rng), Activation(.leakyRelu(0.2)),
                                EqualizedConv2D(8, 4, kernel: 1, rng: &rng), Activation(.relu)])
        try Self.compare(block, input: Tensor(randomNormal: [2, 3, 6, 6], using: &rng))
    }

    @Test func spectrallyNormalizedDiscriminator() throws {
        var rng = PhiloxRandom(seed: 64)
        let D = try DCGAN.discriminator(channels: 1, resolution: 32, width: 8, norm: .spectral, rng: &rng)
        // Its convolutions are wrapped, each but the last followed by a LeakyReLU that now runs in the convolution.
        #expect(D.layers.filter { $0 is SpectralNorm }.count == 4)
        #expect(D.layers.contains { ($0 as? Activation)?.kind.leakySlope == 0.2 })
        try Self.compare(D, input: Tensor(randomNormal: [6, 1, 32, 32], using: &rng), mode: .sample)
        // A wrapped Linear has no fused op: the activation runs after it, with the same result.
        let mlp = Sequential([SpectralNorm(try Linear(5, 7, rng: &rng), rng: &rng), Activation(.relu),
                              SpectralNorm(try Linear(7, 3, rng: &rng), rng: &rng), Activation(.leakyRelu(0.1))])
        try Self.compare(mlp, input: Tensor(randomNormal: [4, 5], using: &rng), mode: .sample)
    }
}
