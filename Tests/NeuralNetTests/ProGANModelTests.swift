import GANFlowTestSupport
import NeuralNet
import Testing
import TensorRuntime

@Suite struct ProGANModelTests {
    static let architecture = try! ProGANArchitecture(target: 16, channels: 3, fmapBase: 64, fmapMax: 16)

    static func generator(seed: UInt64 = 1) -> ProGANGenerator {
        var rng = PhiloxRandom(seed: seed)
        return ProGANGenerator(latent: 8, architecture: architecture, rng: &rng)
    }

    static func discriminator(seed: UInt64 = 2) -> ProGANDiscriminator {
        var rng = PhiloxRandom(seed: seed)
        return ProGANDiscriminator(architecture: architecture, groupSize: 2, rng: &rng)
    }

    static func random(_ shape: [Int], seed: UInt64 = 3) -> Tensor {
        var rng = PhiloxRandom(seed: seed)
        return Tensor(randomNormal: shape, using: &rng)
    }

    @Test func featureMapsFollowTheOfficialFormula() throws {
        let a = try ProGANArchitecture(target: 64, channels: 3, fmapBase: 8192, fmapDecay: 1, fmapMax: 512)
        #expect(a.resolutions == [4, 8, 16, 32, 64])
        #expect((0...6).map(a.features(stage:)) == [512, 512, 512, 512, 512, 256, 128])
        var rng = PhiloxRandom(seed: 9)
        let g = ProGANGenerator(latent: 512, architecture: a, rng: &rng)
        #expect(try g.outputShape(for: [2, 512], resolution: 8) == [2, 3, 8, 8])
        #expect(throws: TensorError.self) { try g.outputShape(for: [2, 512], resolution: 12) }
        #expect(throws: TensorError.self) { try ProGANArchitecture(target: 48, channels: 1) }
    }

    @Test func generatorAlphaOneIsTheHigherResolutionNetworkAndZeroTheLowerOne() throws {
        let g = Self.generator()
        let z = Self.random([4, 8])
        try withoutGradients {
            // alpha 1: the new block and toRGB alone, computed by hand.
            var h = z
            for k in 0...2 { h = try g.blocks[k].forward(h, mode: .train) }
            let high = try g.toRGB[2].forward(h, mode: .train)
            #expect(try g.forward(z, resolution: 16, alpha: 1).scalars == high.scalars)
            // alpha 0: the 8x8 network, each pixel repeated 2x2.
            let low = try g.forward(z, resolution: 8, alpha: 1).upsampleNearest(factor: 2)
            #expect(try g.forward(z, resolution: 16, alpha: 0).scalars == low.scalars)
            // In between, the linear blend.
            let mid = try g.forward(z, resolution: 16, alpha: 0.25).scalars
            let blend = zip(low.scalars, high.scalars).map { 0.75 * $0 + 0.25 * $1 }
            #expect(largestDifference(mid, blend, relativeTo: 1) <= 1e-5)
        }
    }

    @Test func discriminatorAlphaOneIsTheHigherResolutionNetworkAndZeroTheLowerOne() throws {
        let d = Self.discriminator()
        let x = Self.random([4, 3, 16, 16])
        try withoutGradients {
            var h = try d.fromRGB[2].forward(x, mode: .train)
            for k in [2, 1, 0] { h = try d.blocks[k].forward(h, mode: .train) }
            #expect(try d.forward(x, alpha: 1).scalars == h.scalars)
            #expect(h.shape == [4])
            let low = try d.forward(x.downsampleArea(factor: 2), alpha: 1)
            #expect(try d.forward(x, alpha: 0).scalars == low.scalars)
        }
    }

    @Test func alphaZeroGivesNoGradientToTheNewLayers() throws {
        let g = Self.generator()
        let out = try g.forward(Self.random([2, 8]), resolution: 16, alpha: 0)
        let grads = try gradients(of: out.square().sum(), wrt: g.toRGB[2].namedParameters.map(\.1) + [g.toRGB[1].weight])
        #expect(grads[0].scalars.allSatisfy { $0 == 0 })
        #expect(grads[2].scalars.contains { $0 != 0 })
    }

    /// Weights are N(0, 1); He's constant is applied at run time, so a unit-variance input gives
    /// outputs of standard deviation `gain` whatever the fan-in.
    @Test(arguments: [(16, 3), (64, 3), (128, 1)])
    func equalizedLearningRateScalesByHesConstant(_ inChannels: Int, _ kernel: Int) throws {
        var rng = PhiloxRandom(seed: 5)
        let conv = EqualizedConv2D(inChannels, 32, kernel: kernel, rng: &rng)
        let fanIn = inChannels * kernel * kernel
        #expect(conv.scale == Float(2).squareRoot() / Float(fanIn).squareRoot())
        let w = conv.weight.scalars
        let mean = w.reduce(0, +) / Float(w.count)
        let std = (w.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(w.count)).squareRoot()
        #expect(abs(std - 1) < 0.08, "stored weights have std \(std), expected N(0, 1)")
        #expect(conv.bias.scalars.allSatisfy { $0 == 0 })
        let x = Tensor(randomNormal: [16, inChannels, 12, 12], using: &rng)
        let y = try withoutGradients { try conv.forward(x, mode: .train) }
        // Exactly a plain convolution with the scaled weight ...
        let reference = try withoutGradients {
            try conv2d(x, weight: conv.weight * conv.scale, bias: conv.bias, padding: Size2D(kernel / 2, kernel / 2))
        }
        #expect(y.scalars == reference.scalars)
        // ... whose interior outputs have standard deviation sqrt(2) for unit-variance inputs.
        var interior: [Float] = []
        let s = y.shape
        for n in 0..<s[0] { for c in 0..<s[1] { for i in 1..<(s[2] - 1) { for j in 1..<(s[3] - 1) {
            interior.append(y.scalars[((n * s[1] + c) * s[2] + i) * s[3] + j])
        } } } }
        let outStd = (interior.map { $0 * $0 }.reduce(0, +) / Float(interior.count)).squareRoot()
        #expect(abs(outStd / Float(2).squareRoot() - 1) < 0.1, "output std \(outStd), expected about 1.414")
    }

    @Test func equalizedLinearMapsToPerChannelBiasedFeatureMaps() throws {
        var rng = PhiloxRandom(seed: 6)
        let dense = EqualizedLinear(8, 3 * 16, gain: 0.5, featureMap: 4, rng: &rng)
        #expect(dense.bias.shape == [3])
        try dense.bias.assign(Tensor(shape: [3], scalars: [1, 2, 3]))
        let x = Tensor(randomNormal: [2, 8], using: &rng)
        let y = try withoutGradients { try dense.forward(x, mode: .train) }
        #expect(y.shape == [2, 3, 4, 4])
        let plain = try withoutGradients { try linear(x, weight: dense.weight * (0.5 / Float(8).squareRoot())) }
        for n in 0..<2 { for c in 0..<3 { for p in 0..<16 {
            #expect(y.scalars[(n * 3 + c) * 16 + p] == plain.scalars[n * 48 + c * 16 + p] + Float(c + 1))
        } } }
    }
}
