import Foundation
import NeuralNet
@testable import PipelineStages
import Testing
import TensorRuntime

/// GANFlow's ProGAN and MSG-GAN against PyTorch, layer by layer: Fixtures/golden/progan.safetensors,
/// written by Scripts/golden/progan_golden.py from Scripts/bench/torch_reference.py's networks in
/// double precision (4 -> 16, latent 8, feature maps min(32 / 2^stage, 8), minibatch stddev groups
/// of 2, batch 4; random weights and biases). Per case (a resolution and a fade-in alpha): G's
/// features after every block, its images, D's scores, the WGAN-GP + drift loss and its gradients
/// for every parameter of D (through the penalty's double backward), G's loss and gradients, and
/// one Adam step of each.
@Suite struct ProGANParityTests {
    nonisolated(unsafe) static let golden = try! SafeTensorsArchive(contentsOf: fixture("golden/progan.safetensors"))
    static let architecture = try! ProGANArchitecture(target: 16, channels: 1, fmapBase: 32, fmapMax: 8)

    static func load(_ net: any Layer, prefix: String) throws -> any Layer {
        for (name, p) in net.namedParameters { try p.assign(golden.tensor("\(prefix).\(name)")) }
        return net
    }

    static func models() throws -> (G: ProGANGenerator, D: ProGANDiscriminator, M: MSGDiscriminator) {
        var rng = PhiloxRandom(seed: 1)
        let g = ProGANGenerator(latent: 8, architecture: architecture, rng: &rng)
        let d = ProGANDiscriminator(architecture: architecture, groupSize: 2, rng: &rng)
        let m = MSGDiscriminator(architecture: architecture, combine: .linCat, groupSize: 2, rng: &rng)
        return (try load(g, prefix: "G") as! ProGANGenerator, try load(d, prefix: "D") as! ProGANDiscriminator,
                try load(m, prefix: "M") as! MSGDiscriminator)
    }

    /// Largest difference relative to the reference's largest magnitude.
    static func error(_ ours: Tensor, _ name: String) throws -> Float {
        let theirs = try golden.tensor(name)
        #expect(ours.shape == theirs.shape, "\(name): \(ours.shape) vs \(theirs.shape)")
        let scale = max(theirs.scalars.map(abs).max() ?? 0, 1e-6)
        return zip(ours.scalars, theirs.scalars).map { abs($0 - $1) }.max()! / scale
    }

    static func expectClose(_ ours: Tensor, _ name: String, _ tolerance: Float = 1e-4,
                            sourceLocation: SourceLocation = #_sourceLocation) throws {
        let e = try error(ours, name)
        #expect(e < tolerance, "\(name): relative error \(e)", sourceLocation: sourceLocation)
    }

    /// One Adam step (lr 1e-3, betas (0, 0.99)) from `gradients` on a fresh copy of `net`,
    /// compared with PyTorch's where PyTorch's gradient is not negligible (there Adam's first step
    /// is +-lr whatever the gradient's size, so a rounding-level gradient may take either sign).
    static func expectAdamStep(_ fresh: any Layer, gradients: [Tensor], prefix: String, gradientPrefix: String) throws {
        let params = fresh.namedParameters
        let adam = try Adam(parameters: params.map { (name: $0.0, tensor: $0.1) }, learningRate: 1e-3, beta1: 0, beta2: 0.99, eps: 1e-8)
        try adam.step(gradients: gradients)
        for (name, p) in params {
            let expected = try golden.tensor("\(prefix).\(name)").scalars, g = try golden.tensor("\(gradientPrefix).\(name)").scalars
            let significant = (g.map(abs).max() ?? 0) * 1e-3
            let worst = zip(zip(p.scalars, expected), g).filter { abs($0.1) > significant }.map { abs($0.0.0 - $0.0.1) }.max() ?? 0
            #expect(worst < 2e-6, "\(prefix).\(name): \(worst)")
        }
    }

    @Test(arguments: [(8, Float(1)), (16, 0.25), (16, 1)])
    func progressiveNetworksMatchPyTorch(_ resolution: Int, _ alpha: Float) throws {
        let (G, D, _) = try Self.models()
        let name = "r\(resolution)a\(alpha == 1 ? "1" : String(alpha))"
        let z = try Self.golden.tensor("z"), z2 = try Self.golden.tensor("z2")
        var real = try Self.golden.tensor("real")
        if resolution < 16 { real = try real.downsampleArea(factor: 16 / resolution) }
        // transform.fade's cross-fade of the real images.
        if alpha < 1 { real = try fade(real.downsampleArea(factor: 2).upsampleNearest(factor: 2), real, alpha: alpha) }
        try Self.expectClose(real, "\(name).realFaded", 1e-6)

        var h = z
        for k in 0...(try Self.architecture.level(resolution)) {
            h = try G.blocks[k].forward(h, mode: .train)
            try Self.expectClose(h, "\(name).g.block\(k)")
        }
        let fake = try G.forward(z, resolution: resolution, alpha: alpha)
        try Self.expectClose(fake, "\(name).g.images")

        let critic = { (x: Tensor) throws -> Tensor in try D.forward(x, alpha: alpha) }
        let dReal = try critic(real), dFake = try critic(fake.detached())
        try Self.expectClose(dReal, "\(name).d.real")
        try Self.expectClose(dFake, "\(name).d.fake")
        let penalty = try GradientPenalty.wgangp(critic: critic, real: real, fake: fake, epsilon: Self.golden.tensor("eps"))
        try Self.expectClose(penalty.reshaped([1]), "\(name).gp")
        let lossD = try WGANGPLoss.discriminatorLoss(real: dReal, fake: dFake, realLabel: 1) + dReal.square().mean() * 0.001 + penalty * 10
        try Self.expectClose(lossD.reshaped([1]), "\(name).lossD")
        let dParams = D.namedParameters
        let gradD = try gradients(of: lossD, wrt: dParams.map(\.1))
        for ((n, _), g) in zip(dParams, gradD) { try Self.expectClose(g, "\(name).gradD.\(n)", 1e-3) }
        try Self.expectAdamStep(try Self.models().D, gradients: gradD, prefix: "\(name).adamD", gradientPrefix: "\(name).gradD")

        let lossG = try WGANGPLoss.generatorLoss(real: nil, fake: critic(G.forward(z2, resolution: resolution, alpha: alpha)))
        try Self.expectClose(lossG.reshaped([1]), "\(name).lossG")
        let gParams = G.namedParameters
        let gradG = try gradients(of: lossG, wrt: gParams.map(\.1))
        for ((n, _), g) in zip(gParams, gradG) { try Self.expectClose(g, "\(name).gradG.\(n)", 1e-3) }
        try Self.expectAdamStep(try Self.models().G, gradients: gradG, prefix: "\(name).adamG", gradientPrefix: "\(name).gradG")
    }

    @Test func msgNetworksMatchPyTorch() throws {
        let (G, _, M) = try Self.models()
        let z = try Self.golden.tensor("z"), z2 = try Self.golden.tensor("z2"), real = try Self.golden.tensor("real")
        let pyramid = try G.pyramid(z)
        for (s, image) in zip([4, 8, 16], pyramid) { try Self.expectClose(image, "msg.g.\(s)") }
        let realPyramid = [try real.downsampleArea(factor: 4), try real.downsampleArea(factor: 2), real]
        let dReal = try M.forward(pyramid: realPyramid), dFake = try M.forward(pyramid: pyramid.map { $0.detached() })
        try Self.expectClose(dReal, "msg.d.real")
        try Self.expectClose(dFake, "msg.d.fake")
        let lossD = try RelativisticHingeLoss.discriminatorLoss(real: dReal, fake: dFake, realLabel: 1)
        try Self.expectClose(lossD.reshaped([1]), "msg.lossD")
        let mParams = M.namedParameters
        for ((n, _), g) in zip(mParams, try gradients(of: lossD, wrt: mParams.map(\.1))) { try Self.expectClose(g, "msg.gradD.\(n)", 1e-3) }
        let lossG = try RelativisticHingeLoss.generatorLoss(real: M.forward(pyramid: realPyramid).detached(), fake: M.forward(pyramid: G.pyramid(z2)))
        try Self.expectClose(lossG.reshaped([1]), "msg.lossG")
        let gParams = G.namedParameters
        for ((n, _), g) in zip(gParams, try gradients(of: lossG, wrt: gParams.map(\.1))) { try Self.expectClose(g, "msg.gradG.\(n)", 1e-3) }
    }
}
