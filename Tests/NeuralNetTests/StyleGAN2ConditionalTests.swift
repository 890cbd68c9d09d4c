import GANFlowTestSupport
@testable import NeuralNet
import Testing
import TensorRuntime

/// Class-conditional StyleGAN2 as stylegan2-ada-pytorch's `c_dim`: the mapping network with the
/// label's embedding (against PyTorch, `Scripts/golden/stylegan2.py`), the projection
/// discriminator, and their `state_dict` names.
@Suite struct StyleGAN2ConditionalTests {
    static let architecture = try! StyleGAN2Architecture(resolution: 8, imageChannels: 1, channelBase: 32, channelMax: 4)

    /// G's form (z and the label) and D's (the label alone, no mean w kept).
    @Test(arguments: ["mappingConditional", "mappingLabelOnly"])
    func conditionalMappingMatchesPyTorch(_ name: String) throws {
        let g = try StyleGAN2ModelTests.golden.get().named(name)
        let zDim = g.int("zDim"), n = try g.tensor("labels").count
        var rng = PhiloxRandom(seed: 1)
        let mapping = MappingNetwork(zDim: zDim, wDim: g.int("wDim"), layers: g.int("layers"), lrMultiplier: Float(g.params["lrMultiplier"]!),
                                     wAverageBeta: zDim > 0 ? 0.995 : nil, classes: g.int("classes"), rng: &rng)
        #expect((mapping.namedBuffers.map(\.0)) == (zDim > 0 ? ["w_avg"] : []))
        for (name, t) in mapping.namedParameters { try t.assign(try g.tensor(name)) }
        let z = zDim > 0 ? try g.tensor("z").requiringGradients() : nil
        let w = try ClassLabels.with(try g.tensor("labels")) { try mapping.map(z, batch: n) }
        #expect(GoldenFixture.difference(w, try g.tensor("output")) < 1e-4)
        let params = mapping.namedParameters
        let d = try gradients(of: (w * g.tensor("upstream")).sum(), wrt: (z.map { [$0] } ?? []) + params.map(\.1))
        if z != nil { #expect(GoldenFixture.difference(d[0], try g.tensor("dz")) < 1e-4) }
        for ((name, _), grad) in zip(params, d.dropFirst(z == nil ? 0 : 1)) {
            #expect(GoldenFixture.difference(grad, try g.tensor(name + ".grad")) < 1e-5, "\(name)")
        }
        // Without labels the network says what it lacks.
        #expect { try mapping.map(z, batch: n) } throws: {
            "\($0)".contains("StyleGAN2 mapping network (\(g.int("classes")) classes) is conditioned on classes but was given no class labels")
        }
    }

    /// D's score is the inner product of its last features with the class's cmap, over sqrt(C):
    /// computed here from D's own parts, for every class.
    @Test func projectionScoreIsTheInnerProductWithTheClassMap() throws {
        var rng = PhiloxRandom(seed: 7)
        let d = StyleGAN2Discriminator(architecture: Self.architecture, classes: 3, mappingLayers: 2, rng: &rng)
        let x = Tensor(randomNormal: [4, 1, 8, 8], using: &rng)
        var h: Tensor?
        for block in d.blocks { h = try block(h, image: x) }
        let y = try d.epilogueConv(try h!.minibatchStddev(groupSize: 4))
        let features = try d.out(try d.fc(try y.reshaped([4, -1])))
        #expect(features.shape == [4, 4])
        var byClass: [[Float]] = []
        for k in 0..<3 {
            let labels = Tensor(repeating: Float(k), shape: [4])
            let scores = try ClassLabels.with(labels) { try d.forward(x, mode: .sample) }
            #expect(scores.shape == [4, 1])
            let cmap = try ClassLabels.with(labels) { try d.mapping!.map(nil, batch: 4) }
            let expected = try (features * cmap).sum(axes: [1], keepDims: true) * 0.5
            #expect(GoldenFixture.difference(scores, expected) < 1e-5)
            byClass.append(scores.scalars)
        }
        #expect(byClass[0] != byClass[1] && byClass[1] != byClass[2])
        // Every parameter, the label's mapping included, gets a gradient.
        let labels = try Tensor(shape: [4], scalars: [0, 1, 2, 1])
        let scores = try ClassLabels.with(labels) { try d.forward(x, mode: .train) }
        let grads = try gradients(of: scores.sum(), wrt: d.namedParameters.map(\.1))
        for ((name, _), grad) in zip(d.namedParameters, grads) { #expect(grad.scalars.contains { $0 != 0 }, "\(name)") }
    }

    @Test func stateDictNamesFollowStyleGAN2AdaPyTorch() throws {
        // stylegan2-ada-pytorch's Generator(z_dim=6, c_dim=3, w_dim=5, ..., mapping_kwargs={num_layers: 2}) and
        // Discriminator(c_dim=3, ..., mapping_kwargs={num_layers: 2}): their state_dicts add these names to the
        // unconditional ones, and D's out layer gives cmap_dim = channels at 4x4 features.
        var rng = PhiloxRandom(seed: 1)
        let g = StyleGAN2Generator(zDim: 6, wDim: 5, mappingLayers: 2, lrMultiplier: 0.01, classes: 3, architecture: Self.architecture, rng: &rng)
        let plain = StyleGAN2ModelTests.generator()
        let shapes = Dictionary(uniqueKeysWithValues: (g.namedParameters + g.namedBuffers).map { ($0.0, $0.1.shape) })
        #expect(Set(shapes.keys).subtracting((plain.namedParameters + plain.namedBuffers).map(\.0)) == ["mapping.embed.weight", "mapping.embed.bias"])
        #expect(shapes["mapping.embed.weight"] == [5, 3])
        #expect(shapes["mapping.fc0.weight"] == [5, 11])
        let d = StyleGAN2Discriminator(architecture: Self.architecture, classes: 3, mappingLayers: 2, rng: &rng)
        let dShapes = Dictionary(uniqueKeysWithValues: (d.namedParameters + d.namedBuffers).map { ($0.0, $0.1.shape) })
        let plainD = StyleGAN2Discriminator(architecture: Self.architecture, rng: &rng)
        #expect(Set(dShapes.keys).subtracting((plainD.namedParameters + plainD.namedBuffers).map(\.0))
                == ["mapping.embed.weight", "mapping.embed.bias", "mapping.fc0.weight", "mapping.fc0.bias", "mapping.fc1.weight", "mapping.fc1.bias"])
        #expect(dShapes["mapping.embed.weight"] == [4, 3])
        #expect(dShapes["mapping.fc0.weight"] == [4, 4])
        #expect(dShapes["b4.out.weight"] == [4, 4])
    }

    /// The same latent makes different images in different classes, and a class's images do not
    /// depend on the other rows of the batch.
    @Test func theClassChangesTheImage() throws {
        var rng = PhiloxRandom(seed: 2)
        let g = StyleGAN2Generator(zDim: 6, wDim: 5, mappingLayers: 2, lrMultiplier: 0.01, classes: 3, architecture: Self.architecture, rng: &rng)
        let z = Tensor(randomNormal: [1, 6], using: &rng)
        let both = try Tensor.concat([z, z], axis: 0)
        let images = try ClassLabels.with(try Tensor(shape: [2], scalars: [0, 2])) { try withoutGradients { try g.forward(both, mode: .sample) } }
        #expect(GoldenFixture.difference(try images.sliced(axis: 0, 0..<1).copy(), try images.sliced(axis: 0, 1..<2).copy()) > 1e-3)
        let alone = try ClassLabels.with(Tensor(repeating: 2, shape: [1])) { try withoutGradients { try g.forward(z, mode: .sample) } }
        #expect(GoldenFixture.difference(alone, try images.sliced(axis: 0, 1..<2).copy()) < 1e-5)
    }
}
