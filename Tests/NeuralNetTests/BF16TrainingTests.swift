import GANFlowTestSupport
import NeuralNet
import Testing
import TensorRuntime

/// A few Adam steps of a small DCGAN (transposed convolutions, batch norm, convolutions, the
/// fully connected first and last layers as matmuls) in bf16 against the same steps in fp32.
@Suite(.enabled(if: bf16Unavailable == nil, Comment(rawValue: bf16Unavailable ?? "")))
struct BF16TrainingTests {
    /// Generator and discriminator losses of each step, and each parameter's change over the
    /// steps, in `precision`.
    static func train(_ precision: ComputePrecision, steps: Int) throws -> (losses: [Float], changes: [[Float]]) {
        var initRNG = PhiloxRandom(seed: 5, stream: 1)
        let G = try DCGAN.generator(latent: 16, channels: 1, resolution: 32, width: 16, rng: &initRNG)
        let D = try DCGAN.discriminator(channels: 1, resolution: 32, width: 16, rng: &initRNG)
        let parameters = (G.namedParameters + D.namedParameters).map { (name: $0.0, tensor: $0.1) }
        let before = parameters.map { $0.tensor.scalars }
        let optG = try Adam(parameters: G.namedParameters.map { (name: $0.0, tensor: $0.1) }, learningRate: 2e-4, beta1: 0.5)
        let optD = try Adam(parameters: D.namedParameters.map { (name: $0.0, tensor: $0.1) }, learningRate: 2e-4, beta1: 0.5)
        var data = PhiloxRandom(seed: 5, stream: 2)
        let real = Tensor(randomUniform: [16, 1, 32, 32], low: -1, high: 1, using: &data)
        var losses: [Float] = []
        try ComputePrecision.with(precision) {
            for _ in 0..<steps {
                let z = Tensor(randomNormal: [16, 16, 1, 1], using: &data)
                let ones = Tensor(repeating: 1, shape: [16]), zeros = Tensor(zeros: [16])
                let fake = try G.forward(z, mode: .train)
                let lossD = try Tensor.binaryCrossEntropyWithLogits(D.forward(real, mode: .train), ones)
                    + Tensor.binaryCrossEntropyWithLogits(D.forward(fake.detached(), mode: .train), zeros)
                try optD.step(gradients: gradients(of: lossD, wrt: optD.parameters.map(\.tensor)))
                let lossG = try Tensor.binaryCrossEntropyWithLogits(D.forward(fake, mode: .train), ones)
                try optG.step(gradients: gradients(of: lossG, wrt: optG.parameters.map(\.tensor)))
                losses += [lossD.item(), lossG.item()]
            }
        }
        let changes = zip(parameters, before).map { p, b in zip(p.tensor.scalars, b).map { $0 - $1 } }
        return (losses, changes)
    }

    /// DCGAN's networks (convolutions, batch norm, activations) store their bf16 convolution
    /// results channels last; with spectral norm or class conditioning they do not.
    @Test func dcganStoresConvolutionResultsChannelsLast() throws {
        var rng = PhiloxRandom(seed: 6)
        #expect(try DCGAN.generator(latent: 16, channels: 1, resolution: 32, width: 16, rng: &rng).convolutionResultsChannelsLast)
        #expect(try DCGAN.discriminator(channels: 1, resolution: 32, width: 16, rng: &rng).convolutionResultsChannelsLast)
        let spectral = try DCGAN.discriminator(features: [1, 16, 32], specs: [ConvSpec(kernel: 4, stride: 2, padding: 1),
                                                                             ConvSpec(kernel: 8, stride: 1, padding: 0)],
                                               norm: .spectral, rng: &rng)
        #expect(!spectral.convolutionResultsChannelsLast)
    }

    /// Losses agree within 1% at every step. Adam's first steps move each weight by about the
    /// learning rate in the direction of its gradient's sign, and bf16 can flip the sign of a
    /// gradient near zero, so the changes are compared in aggregate: over all weights, the mean
    /// |bf16 change - fp32 change| is within 15% of the mean |fp32 change| (measured 7.4% on
    /// Zen 4), and the changes are not identical.
    @Test func adamStepsFollowFP32() throws {
        let fp32 = try Self.train(.fp32, steps: 4)
        let bf16 = try Self.train(.bf16, steps: 4)
        for (i, (b, f)) in zip(bf16.losses, fp32.losses).enumerated() {
            #expect(abs(b - f) <= 0.01 * abs(f), "loss \(i): bf16 \(b), fp32 \(f)")
        }
        let f = fp32.changes.joined(), b = bf16.changes.joined()
        let difference = zip(b, f).map { abs($0 - $1) }.reduce(0, +)
        let scale = f.map(abs).reduce(0, +)
        print("BF16TrainingTests: mean |bf16 - fp32| change / mean |fp32 change| = \(difference / scale)")
        #expect(difference <= 0.15 * scale)
        #expect(difference > 0)
    }
}

/// StyleGAN2's networks in bf16 with their convolution results stored channels last (the
/// default) against the same networks storing them [N, C, H, W]: images, scores, first-order
/// gradients and R1's second-order ones agree within bf16's rounding, where a misread layout
/// would be off by the values themselves.
@Suite(.enabled(if: bf16Unavailable == nil, Comment(rawValue: bf16Unavailable ?? "")))
struct StyleGAN2ChannelsLastTests {
    @Test func channelsLastMatchesChannelsFirst() throws {
        let a = try StyleGAN2Architecture(resolution: 16, imageChannels: 1, channelBase: 256, channelMax: 32)
        func run(_ channelsLast: Bool) throws -> [Tensor] {
            var rng = PhiloxRandom(seed: 7)
            let G = StyleGAN2Generator(zDim: 8, wDim: 8, mappingLayers: 2, lrMultiplier: 0.01, architecture: a, rng: &rng)
            let D = StyleGAN2Discriminator(architecture: a, rng: &rng)
            #expect(G.convolutionResultsChannelsLast && D.convolutionResultsChannelsLast)
            G.convolutionResultsChannelsLast = channelsLast
            D.convolutionResultsChannelsLast = channelsLast
            // Biases start at zero (the affine layers' at one): random ones, so that a bias read
            // from the wrong channel shows.
            for (name, t) in G.namedParameters + D.namedParameters where name.hasSuffix("bias") {
                try t.assign(Tensor(randomNormal: t.shape, std: 0.5, using: &rng))
            }
            let z = Tensor(randomNormal: [8, 8], using: &rng)
            let real = Tensor(randomUniform: [8, 1, 16, 16], low: -1, high: 1, using: &rng).requiringGradients()
            return try ComputePrecision.with(.bf16) {
                var noise = PhiloxRandom(seed: 8)
                let images = try G.forward(z, training: true, rng: &noise)
                let gParams = G.namedParameters.map(\.1), dParams = D.namedParameters.map(\.1)
                let lossG = try D.forward(images, mode: .train).sum()
                let gGrads = try gradients(of: lossG, wrt: gParams)
                let scores = try D.forward(real, mode: .train)
                let dReal = try gradients(of: scores.sum(), wrt: [real], createGraph: true)[0]
                let r1Grads = try gradients(of: (dReal * dReal).sum(), wrt: dParams)
                return [images, scores] + gGrads + r1Grads
            }
        }
        let last = try run(true), first = try run(false)
        var worst: Float = 0
        for (l, f) in zip(last, first) {
            let scale = max(f.scalars.map(abs).max()!, 1e-12)
            worst = max(worst, zip(l.scalars, f.scalars).map { abs($0 - $1) }.max()! / scale)
        }
        #expect(worst < 3e-2, "largest difference \(worst) of the largest value")
        #expect(worst > 0, "the two layouts ran the same kernels")
    }
}
