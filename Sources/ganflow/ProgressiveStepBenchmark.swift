import Foundation
import NeuralNet
import PipelineStages
import TensorRuntime

/// A training step that `ganflow bench` times and profiles.
protocol TrainingStepBenchmark {
    var name: String { get }
    var batch: Int { get }
    var gflopPerStep: Double { get }
    mutating func step() throws
}

extension TrainingStepBenchmark {
    /// Times `steps` steps after `warmup`; returns seconds per step.
    mutating func time(steps: Int, warmup: Int) throws -> [Double] {
        for _ in 0..<warmup { try step() }
        var times: [Double] = []
        for _ in 0..<steps {
            let t = DispatchTime.now().uptimeNanoseconds
            try step()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9)
        }
        return times
    }
}

/// The benchmark of `model`: the DCGAN-style models, or ProGAN-32 and MSG-GAN-32.
func makeStepBenchmark(model: String, batch: Int) throws -> any TrainingStepBenchmark {
    if ProgressiveStepBenchmark.models.contains(model) { return try ProgressiveStepBenchmark(model: model, batch: batch) }
    return try StepBenchmark(model: model, batch: batch)
}

/// One training step of the networks of `progan-fashion.json` and `msggan-fashion.json` at 32x32
/// (ProGAN stable at its target, alpha 1), built on the library the pipelines use. progan32 keeps
/// the paper's WGAN-GP step, the heavier one (double backward every step), though the pipeline now
/// trains with the non-saturating loss and lazy R1. Timed as
/// `Scripts/bench/torch_reference.py` times its `progan32` and `msggan32`:
///
/// - the networks: latent 128, feature maps min(512 / 2^stage, 128), one channel, minibatch
///   stddev in groups of 4 (MSG-GAN: lin_cat);
/// - D's phase: z, G(z) without gradients, D on the real batch (MSG-GAN: its pyramid) and the
///   fakes; progan32: Wasserstein loss + drift 0.001 E[D(real)^2] + 10 x WGAN-GP (double
///   backward); msggan32: relativistic average hinge; D's Adam update;
/// - G's phase: a new z, D(G(z)) (MSG-GAN: and D(real)), G's Adam update;
/// - Adam (0, 0.99), eps 1e-8, lr 1e-3 (progan32) or 3e-3 (msggan32).
struct ProgressiveStepBenchmark: TrainingStepBenchmark {
    static let models = ["progan32", "msggan32"]
    let name: String
    let batch: Int
    let G: ProGANGenerator
    let D: any Layer
    let optG: Adam
    let optD: Adam
    let real: [Tensor]
    let gflopPerStep: Double
    var rng: PhiloxRandom

    init(model: String, batch: Int, seed: UInt64 = 0) throws {
        name = model
        self.batch = batch
        var init_ = PhiloxRandom(seed: seed, stream: 1)
        let a = try ProGANArchitecture(target: 32, channels: 1, fmapBase: 512, fmapMax: 128)
        G = ProGANGenerator(latent: 128, architecture: a, rng: &init_)
        D = model == "progan32" ? ProGANDiscriminator(architecture: a, groupSize: 4, rng: &init_)
                                : MSGDiscriminator(architecture: a, combine: .linCat, groupSize: 4, rng: &init_)
        let lr = model == "progan32" ? 1e-3 : 3e-3
        func named(_ net: any Layer) -> [(name: String, tensor: Tensor)] { net.namedParameters.map { (name: $0.0, tensor: $0.1) } }
        optG = try Adam(parameters: named(G), learningRate: lr, beta1: 0, beta2: 0.99, eps: 1e-8)
        optD = try Adam(parameters: named(D), learningRate: lr, beta1: 0, beta2: 0.99, eps: 1e-8)
        var data = PhiloxRandom(seed: seed, stream: 2)
        let x = Tensor(randomUniform: [batch, 1, 32, 32], low: -1, high: 1, using: &data)
        real = model == "progan32" ? [x] : try [8, 4, 2].map { try x.downsampleArea(factor: $0) } + [x]
        rng = PhiloxRandom(seed: seed, stream: 3)
        // As the reference counts: G twice forward and once backward (2x), D 12 (progan32: three
        // forward passes and their backward, the penalty's double backward, the G phase) or 10
        // (msggan32: two in each phase) forward passes' worth.
        let (fg, fd) = try Self.forwardFLOPs(G, D, batch: batch)
        gflopPerStep = (4 * fg + (model == "progan32" ? 12 : 10) * fd) / 1e9
    }

    /// Forward FLOPs of G at 32x32 and of D on its output, counted as the reference counts them.
    static func forwardFLOPs(_ G: ProGANGenerator, _ D: any Layer, batch: Int) throws -> (Double, Double) {
        var fg = 0.0, shape = [batch, G.latent]
        for (k, block) in G.blocks.enumerated() {
            fg += try NeuralNet.forwardFLOPs(block, input: shape)
            shape = try block.outputShape(for: shape)
            if k == G.blocks.count - 1 || D is MSGDiscriminator { fg += try NeuralNet.forwardFLOPs(G.toRGB[k], input: shape) }
        }
        var fd = 0.0
        let sides = G.architecture.resolutions
        if let d = D as? ProGANDiscriminator {
            var s = [batch, 1, 32, 32]
            let top = sides.count - 1
            for layer in [d.fromRGB[top]] + d.blocks.reversed() {
                fd += try NeuralNet.forwardFLOPs(layer, input: s)
                s = try layer.outputShape(for: s)
            }
        } else if let d = D as? MSGDiscriminator {
            let top = sides.count - 1
            var s = [batch, 1, 32, 32]
            fd += try NeuralNet.forwardFLOPs(d.fromRGB, input: s)
            s = try d.fromRGB.outputShape(for: s)
            for k in stride(from: top, through: 0, by: -1) {
                if k < top, let conv = d.combines[k].conv {
                    fd += try NeuralNet.forwardFLOPs(conv, input: [batch, 1, sides[k], sides[k]])
                    s[1] = d.combines[k].outputChannels
                }
                fd += try NeuralNet.forwardFLOPs(d.blocks[k], input: s)
                s = try d.blocks[k].outputShape(for: s)
            }
        }
        return (fg, fd)
    }

    func critic(_ x: [Tensor]) throws -> Tensor {
        if let d = D as? MSGDiscriminator { return try d.forward(pyramid: x) }
        return try (D as! ProGANDiscriminator).forward(x[0], alpha: 1)
    }

    func generate(_ z: Tensor) throws -> [Tensor] {
        D is MSGDiscriminator ? try G.pyramid(z) : [try G.forward(z, resolution: 32, alpha: 1)]
    }

    mutating func step() throws {
        let z = Tensor(randomNormal: [batch, 128], using: &rng)
        let fake = try withoutGradients { try generate(z) }
        let lossD: Tensor
        if D is MSGDiscriminator {
            lossD = try RelativisticHingeLoss.discriminatorLoss(real: critic(real), fake: critic(fake), realLabel: 1)
        } else {
            let dReal = try critic(real)
            let epsilon = Tensor(randomUniform: [batch], using: &rng)
            let penalty = try GradientPenalty.wgangp(critic: { try critic([$0]) }, real: real[0], fake: fake[0], epsilon: epsilon)
            lossD = try WassersteinLoss.discriminatorLoss(real: dReal, fake: critic(fake), realLabel: 1)
                + dReal.square().mean() * 0.001 + penalty * 10
        }
        try optD.step(gradients: gradients(of: lossD, wrt: optD.parameters.map(\.tensor)))
        let z2 = Tensor(randomNormal: [batch, 128], using: &rng)
        let lossG: Tensor
        if D is MSGDiscriminator {
            let dReal = try withoutGradients { try critic(real) }
            lossG = try RelativisticHingeLoss.generatorLoss(real: dReal, fake: critic(generate(z2)))
        } else {
            lossG = try WassersteinLoss.generatorLoss(real: nil, fake: critic(generate(z2)))
        }
        try optG.step(gradients: gradients(of: lossG, wrt: optG.parameters.map(\.tensor)))
    }
}
