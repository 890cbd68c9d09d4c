import Foundation
import NeuralNet
import TensorRuntime

/// One GAN training step of the reference models, built directly on the runtime, timed the way
/// `../shared/bench/torch_reference.py` times PyTorch's: D on a real batch and on G(z).detach(),
/// D update; D(G(z)) for the generator's loss, G update; Adam 2e-4 (0.5, 0.999); non-saturating
/// BCE on logits.
struct StepBenchmark: TrainingStepBenchmark {
    let name: String
    let batch: Int
    let G: any Layer
    let D: any Layer
    let optG: Adam
    let optD: Adam
    let latent: [Int]
    let real: Tensor
    let gflopPerStep: Double
    var rng: PhiloxRandom

    static let models = ["mlp", "dcgan32", "dcgan64", "stylegan2_32"]

    init(model: String, batch: Int, seed: UInt64 = 0) throws {
        name = model
        self.batch = batch
        var init_ = PhiloxRandom(seed: seed, stream: 1)
        var imageShape: [Int]
        switch model {
        case "mlp":
            G = try MLPGAN.generator(rng: &init_)
            D = try MLPGAN.discriminator(rng: &init_)
            latent = [batch, 100]
            imageShape = [batch, 1, 28, 28]
        case "dcgan32", "dcgan64":
            let (res, ch) = model == "dcgan32" ? (32, 1) : (64, 3)
            G = try DCGAN.generator(latent: 100, channels: ch, resolution: res, rng: &init_)
            D = try DCGAN.discriminator(channels: ch, resolution: res, rng: &init_)
            latent = [batch, 100, 1, 1]
            imageShape = [batch, ch, res, res]
        case "stylegan2_32":
            // pipelines/stylegan2-fashion.json's networks: w 128, 4 mapping layers, channels min(512 / r, 128)
            // (min(1024 / r, 64) until session 20).
            let a = try StyleGAN2Architecture(resolution: 32, imageChannels: 1, channelBase: 512, channelMax: 128)
            G = StyleGAN2Generator(zDim: 128, wDim: 128, mappingLayers: 4, lrMultiplier: 0.01, architecture: a, rng: &init_)
            D = StyleGAN2Discriminator(architecture: a, rng: &init_)
            latent = [batch, 128]
            imageShape = [batch, 1, 32, 32]
        default:
            throw ValidationErrorText("unknown model '\(model)'; one of \((Self.models + ProgressiveStepBenchmark.models).joined(separator: ", "))")
        }
        func named(_ net: any Layer) -> [(name: String, tensor: Tensor)] { net.namedParameters.map { (name: $0.0, tensor: $0.1) } }
        optG = try Adam(parameters: named(G), learningRate: 2e-4, beta1: 0.5, beta2: 0.999)
        optD = try Adam(parameters: named(D), learningRate: 2e-4, beta1: 0.5, beta2: 0.999)
        var data = PhiloxRandom(seed: seed, stream: 2)
        real = Tensor(randomUniform: imageShape, low: -1, high: 1, using: &data)
        rng = PhiloxRandom(seed: seed, stream: 3)
        let fg = try forwardFLOPs(G, input: latent)
        let fd = try forwardFLOPs(D, input: imageShape)
        gflopPerStep = (3 * fg + 9 * fd) / 1e9
    }

    mutating func step() throws {
        let z = Tensor(randomNormal: latent, using: &rng)
        let fake = try G.forward(z, mode: .train)
        let ones = Tensor(repeating: 1, shape: [batch]), zeros = Tensor(zeros: [batch])
        let lossD = try Tensor.binaryCrossEntropyWithLogits(logits(real), ones)
            + Tensor.binaryCrossEntropyWithLogits(logits(fake.detached()), zeros)
        try optD.step(gradients: gradients(of: lossD, wrt: optD.parameters.map(\.tensor)))
        let lossG = try Tensor.binaryCrossEntropyWithLogits(logits(fake), ones)
        try optG.step(gradients: gradients(of: lossG, wrt: optG.parameters.map(\.tensor)))
    }

    /// D's logits as [N] (StyleGAN2's D gives [N, 1]).
    func logits(_ images: Tensor) throws -> Tensor { try D.forward(images, mode: .train).reshaped([batch]) }

}

struct ValidationErrorText: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? .nan : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
}
