import GANFlowTestSupport
import NeuralNet
import Testing
import TensorRuntime

/// StyleGAN2's mapping network, path-length penalty and networks, against PyTorch
/// (`Scripts/golden/stylegan2.py`) and stylegan2-ada-pytorch's `state_dict` layout.
@Suite struct StyleGAN2ModelTests {
    static let golden = Result { try GoldenFixture.load("stylegan2.json") }
    static let architecture = try! StyleGAN2Architecture(resolution: 8, imageChannels: 1, channelBase: 32, channelMax: 4)

    static func generator(seed: UInt64 = 1) -> StyleGAN2Generator {
        var rng = PhiloxRandom(seed: seed)
        return StyleGAN2Generator(zDim: 6, wDim: 5, mappingLayers: 2, lrMultiplier: 0.01, architecture: architecture, rng: &rng)
    }

    @Test func mappingNetworkMatchesPyTorch() throws {
        let g = try Self.golden.get().named("mapping")
        var rng = PhiloxRandom(seed: 1)
        let mapping = MappingNetwork(zDim: 6, wDim: g.int("wDim"), layers: g.int("layers"), lrMultiplier: Float(g.params["lrMultiplier"]!), rng: &rng)
        for (name, t) in mapping.namedParameters { try t.assign(try g.tensor(name)) }
        let z = try g.tensor("z").requiringGradients()
        let w = try mapping(z)
        #expect(GoldenFixture.difference(w, try g.tensor("output")) < 1e-4)
        let params = mapping.namedParameters
        let d = try gradients(of: (w * g.tensor("upstream")).sum(), wrt: [z] + params.map(\.1))
        #expect(GoldenFixture.difference(d[0], try g.tensor("dz")) < 1e-4)
        for ((name, _), grad) in zip(params, d.dropFirst()) {
            // Weights are stored / 0.01, so their gradients are 100 times smaller than a plain layer's.
            #expect(GoldenFixture.difference(grad, try g.tensor(name + ".grad")) < 1e-5, "\(name)")
        }
    }

    @Test func mappingTracksTheMeanWAndTruncatesTowardsIt() throws {
        var rng = PhiloxRandom(seed: 2)
        let mapping = MappingNetwork(zDim: 4, wDim: 3, layers: 2, lrMultiplier: 0.01, wAverageBeta: 0.5, rng: &rng)
        let z = Tensor(randomNormal: [8, 4], using: &rng)
        let w = try mapping(z, trackAverage: true)
        let mean = try w.mean(axes: [0]).scalars
        for (a, m) in zip(mapping.wAverage!.scalars, mean) { #expect(abs(a - m * 0.5) < 1e-6) }
        let t = try mapping.truncated(w, psi: 0)
        for row in 0..<8 { for j in 0..<3 { #expect(abs(t.scalars[row * 3 + j] - mapping.wAverage!.scalars[j]) < 1e-6) } }
        #expect(try mapping.truncated(w, psi: 1) === w)
    }

    /// The golden case's two-block synthesis, built from the runtime ops and a regularizer.
    @Test func pathLengthPenaltyMatchesPyTorch() throws {
        let g = try Self.golden.get().named("pathLength")
        let ws = try g.tensor("ws").requiringGradients()
        let names = ["affine0", "conv0", "affine1", "conv1", "affine2", "torgb"]
        let p = try names.map { try g.tensor($0).requiringGradients() }
        let n = ws.shape[0], wDim = ws.shape[2], c = p[1].shape[0]
        func w(_ i: Int) throws -> Tensor { try ws.sliced(axis: 1, i..<(i + 1)).reshaped([n, wDim]) }
        func styles(_ i: Int, _ a: Tensor) throws -> Tensor {
            try linear(try w(i), weight: a * (1 / Float(wDim).squareRoot()), bias: Tensor(repeating: 1, shape: [c]))
        }
        let const = try g.tensor("const")
        var x = try const.reshaped([1] + const.shape).expanded(to: [n] + const.shape)
        x = try biasActivation(try modulatedConv2d(x, weight: p[1], styles: styles(0, p[0]), padding: 1), bias: nil)
        x = try biasActivation(try modulatedConv2d(x, weight: p[3], styles: styles(1, p[2]), up: 2, padding: 1), bias: nil)
        let images = try modulatedConv2d(x, weight: p[5], styles: try styles(2, p[4]) * (1 / Float(c).squareRoot()), demodulate: false, padding: 0)
        #expect(GoldenFixture.difference(images, try g.tensor("images")) < 1e-4)

        var regularizer = PathLengthRegularizer(decay: Float(g.params["decay"]!), mean: Float(g.params["plMean"]!))
        let (penalty, lengths) = try regularizer.penalty(images: images, ws: ws, direction: try g.tensor("noise"))
        #expect(GoldenFixture.difference(lengths, try g.tensor("lengths")) < 1e-4)
        #expect(abs(regularizer.mean - (try g.tensor("newMean")).item()) < 1e-5)
        let loss = penalty * Float(g.params["weight"]!)
        #expect(GoldenFixture.difference(loss, try g.tensor("loss")) < 1e-4)
        let d = try gradients(of: loss, wrt: p)
        for (name, grad) in zip(names, d) {
            #expect(GoldenFixture.difference(grad, try g.tensor(name + ".grad")) < 1e-3, "\(name)")
        }
    }

    @Test func stateDictNamesFollowStyleGAN2AdaPyTorch() throws {
        // Checked against stylegan2-ada-pytorch's Generator(z_dim=6, c_dim=0, w_dim=5,
        // img_resolution=8, img_channels=1, mapping_kwargs={num_layers: 2},
        // synthesis_kwargs={channel_base: 32, channel_max: 4}).state_dict().
        let g = Self.generator()
        let names = Set((g.namedParameters + g.namedBuffers).map(\.0))
        var expected: Set<String> = ["mapping.fc0.weight", "mapping.fc0.bias", "mapping.fc1.weight", "mapping.fc1.bias", "mapping.w_avg",
                                     "synthesis.b4.const", "synthesis.b4.resample_filter", "synthesis.b8.resample_filter"]
        for layer in ["b4.conv1", "b8.conv0", "b8.conv1"] {
            for p in ["affine.weight", "affine.bias", "weight", "noise_strength", "bias", "resample_filter", "noise_const"] {
                expected.insert("synthesis.\(layer).\(p)")
            }
        }
        for block in ["b4", "b8"] { for p in ["affine.weight", "affine.bias", "weight", "bias"] { expected.insert("synthesis.\(block).torgb.\(p)") } }
        #expect(names == expected)
        #expect(g.numWs == 4)
        let shapes = Dictionary(uniqueKeysWithValues: (g.namedParameters + g.namedBuffers).map { ($0.0, $0.1.shape) })
        #expect(shapes["synthesis.b8.conv0.weight"] == [4, 4, 3, 3])
        #expect(shapes["synthesis.b8.conv0.noise_strength"] == [])
        #expect(shapes["synthesis.b8.torgb.weight"] == [1, 4, 1, 1])

        var rng = PhiloxRandom(seed: 3)
        let d = StyleGAN2Discriminator(architecture: Self.architecture, rng: &rng)
        let dNames = Set((d.namedParameters + d.namedBuffers).map(\.0))
        let dExpected: Set<String> = [
            "b8.resample_filter", "b8.fromrgb.weight", "b8.fromrgb.bias", "b8.fromrgb.resample_filter",
            "b8.conv0.weight", "b8.conv0.bias", "b8.conv0.resample_filter", "b8.conv1.weight", "b8.conv1.bias",
            "b8.conv1.resample_filter", "b8.skip.weight", "b8.skip.resample_filter",
            "b4.conv.weight", "b4.conv.bias", "b4.conv.resample_filter", "b4.fc.weight", "b4.fc.bias", "b4.out.weight", "b4.out.bias",
        ]
        #expect(dNames == dExpected)
        // Plain ("orig") blocks: the same names without the skip.
        var plainRNG = PhiloxRandom(seed: 3)
        let plain = StyleGAN2Discriminator(architecture: Self.architecture, blocks: .orig, rng: &plainRNG)
        #expect(Set((plain.namedParameters + plain.namedBuffers).map(\.0)) == dExpected.subtracting(["b8.skip.weight", "b8.skip.resample_filter"]))
    }

    /// `channelMin` widens only the resolutions where channelBase / r falls below it; 1 gives
    /// stylegan2-ada-pytorch's widths.
    @Test func channelMinWidensOnlyTheFinestResolutions() throws {
        let plain = try StyleGAN2Architecture(resolution: 32, imageChannels: 1, channelBase: 512, channelMax: 128)
        let wide = try StyleGAN2Architecture(resolution: 32, imageChannels: 1, channelBase: 512, channelMax: 128, channelMin: 32)
        #expect(plain.resolutions.map(plain.channels) == [128, 64, 32, 16])
        #expect(wide.resolutions.map(wide.channels) == [128, 64, 32, 32])
        #expect(throws: TensorError.self) { try StyleGAN2Architecture(resolution: 32, imageChannels: 1, channelBase: 512, channelMax: 16, channelMin: 32) }
        let small = try StyleGAN2Architecture(resolution: 8, imageChannels: 1, channelBase: 32, channelMax: 4, channelMin: 3)
        #expect(small.resolutions.map(small.channels) == [4, 4])
        var rng = PhiloxRandom(seed: 2)
        let g = StyleGAN2Generator(zDim: 6, wDim: 5, mappingLayers: 2, lrMultiplier: 0.01,
                                   architecture: try StyleGAN2Architecture(resolution: 8, imageChannels: 1, channelBase: 16, channelMax: 4, channelMin: 3), rng: &rng)
        let shapes = Dictionary(uniqueKeysWithValues: g.namedParameters.map { ($0.0, $0.1.shape) })
        #expect(shapes["synthesis.b4.conv1.weight"] == [4, 4, 3, 3])
        #expect(shapes["synthesis.b8.conv0.weight"] == [3, 4, 3, 3])
        #expect(shapes["synthesis.b8.conv1.weight"] == [3, 3, 3, 3])
        let d = StyleGAN2Discriminator(architecture: try StyleGAN2Architecture(resolution: 8, imageChannels: 1, channelBase: 16, channelMax: 4, channelMin: 3), rng: &rng)
        #expect(try d.forward(Tensor(zeros: [4, 1, 8, 8]), mode: .train).shape == [4, 1])
    }

    @Test func generatorAndDiscriminatorShapes() throws {
        let g = Self.generator()
        var rng = PhiloxRandom(seed: 4)
        let z = Tensor(randomNormal: [4, 6], using: &rng)
        let images = try g.forward(z, training: true, mixing: 0.9, rng: &rng)
        #expect(images.shape == [4, 1, 8, 8])
        #expect(try g.outputShape(for: [4, 6]) == [4, 1, 8, 8])
        #expect(throws: TensorError.self) { try g.outputShape(for: [4, 7]) }
        let d = StyleGAN2Discriminator(architecture: Self.architecture, rng: &rng)
        let scores = try d.forward(images, mode: .train)
        #expect(scores.shape == [4, 1])
        #expect(throws: TensorError.self) { try d.outputShape(for: [6, 1, 8, 8]) }
        // Every parameter of both networks gets a gradient from D(G(z)).
        let all = g.namedParameters + d.namedParameters
        let grads = try gradients(of: scores.sum(), wrt: all.map(\.1))
        for ((name, _), grad) in zip(all, grads) where !name.hasSuffix("noise_strength") {
            #expect(grad.scalars.contains { $0 != 0 }, "\(name)")
        }
    }

    @Test func samplingIsAFunctionOfTheLatentAlone() throws {
        let g = Self.generator()
        var rng = PhiloxRandom(seed: 5)
        let z = Tensor(randomNormal: [3, 6], using: &rng)
        let all = try withoutGradients { try g.forward(z, mode: .sample) }
        let one = try withoutGradients { try g.forward(try z.sliced(axis: 0, 1..<2).copy(), mode: .sample) }
        #expect(GoldenFixture.difference(try all.sliced(axis: 0, 1..<2).copy(), one) < 1e-5)
    }

    @Test func styleMixingChangesOnlyWhenDrawn() throws {
        let g = Self.generator()
        var rng = PhiloxRandom(seed: 6)
        let z = Tensor(randomNormal: [2, 6], using: &rng)
        var r1 = PhiloxRandom(seed: 7), r2 = PhiloxRandom(seed: 7)
        let plain = try g.ws(z, training: true, mixing: 0, rng: &r1)
        let mixed = try g.ws(z, training: true, mixing: 1, rng: &r2)
        // The first w always comes from z; with mixing 1 some later ones come from another latent.
        let d = g.mapping.wDim
        #expect(Array(plain.scalars[0..<d]) == Array(mixed.scalars[0..<d]))
        #expect(plain.scalars != mixed.scalars)
    }

    /// The benchmark's FLOPs of a tiny StyleGAN2 pair, counted by hand: channels 4 at 4x4 and
    /// 2 at 8x8, w of 5 from z of 3 through two layers, batch 2 (so 2 x 2 x the multiply-adds).
    @Test func forwardFLOPsCountEveryConvolutionAndFullyConnectedLayer() throws {
        var rng = PhiloxRandom(seed: 5)
        let a = try StyleGAN2Architecture(resolution: 8, imageChannels: 1, channelBase: 16, channelMax: 4)
        let g = StyleGAN2Generator(zDim: 3, wDim: 5, mappingLayers: 2, lrMultiplier: 0.01, architecture: a, rng: &rng)
        let d = StyleGAN2Discriminator(architecture: a, groupSize: 2, rng: &rng)
        // G: mapping 3x5 + 5x5; b4 conv1 4x4x9 on 16 pixels, its affine 5x4, toRGB 4 on 16, affine
        // 5x4; b8 conv0 4x2x9 on the 16 input pixels, affine 5x4, conv1 2x2x9 on 64, affine 5x2,
        // toRGB 2 on 64, affine 5x2.
        let gMACs = 15 + 25 + 16 * 144 + 20 + 16 * 4 + 20 + 16 * 72 + 20 + 64 * 36 + 10 + 64 * 2 + 10
        // D: b8 fromRGB 2 on 64, conv0 2x2x9 on 64, conv1 2x4x9 on 16, skip 2x4 on 16; epilogue conv
        // (4 + 1 stddev)x4x9 on 16, fc 64x4, out 4.
        let dMACs = 64 * 2 + 64 * 36 + 16 * 72 + 16 * 8 + 16 * 180 + 256 + 4
        #expect(try forwardFLOPs(g, input: [2, 3]) == Double(4 * gMACs))
        #expect(try forwardFLOPs(d, input: [2, 1, 8, 8]) == Double(4 * dMACs))
        // Plain blocks: the same without the skip's 2x4 on 16 pixels.
        let plain = StyleGAN2Discriminator(architecture: a, blocks: .orig, groupSize: 2, rng: &rng)
        #expect(try forwardFLOPs(plain, input: [2, 1, 8, 8]) == Double(4 * (dMACs - 16 * 8)))
    }
}
