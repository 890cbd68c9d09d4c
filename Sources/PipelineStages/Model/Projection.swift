import Foundation
import ImageIO
import NeuralNet
import PipelineGraph
import TensorRuntime

/// Finds the latent whose image reproduces a given image (GAN inversion by optimisation).
///
/// The loss is the style-transfer objective with the latent in the place of the image:
/// `loss.content`'s mean squared distance on the pixels (in [-1, 1]) plus `featureWeight` times
/// the same distance on the activations of `features.random`'s network (VGG-shaped, fixed random
/// weights, seeded; gray images repeated to RGB), at `block1_conv2` and `block2_conv2`. The
/// latent starts at one seed's latent and is moved by L-BFGS (strong-Wolfe line search,
/// `optimizer.lbfgs`'s) or Adam. A chosen latent's image depends on it alone (see
/// `GeneratorSampler`), so the latent found reproduces its image in `sample` and `interpolate`.
public struct Projection {
    public enum Method: String, Sendable, CaseIterable {
        case lbfgs, adam
    }

    public struct Result {
        /// The latent found, [1, dim].
        public var latent: Tensor
        /// Its image, [1, C, H, W] in [-1, 1].
        public var image: Tensor
        /// The loss after each step (the start first).
        public var losses: [Double]
        /// Mean absolute difference between the image found and the target, in [0, 1] pixel units.
        public var pixelError: Float
    }

    public let sampler: GeneratorSampler
    public var method: Method = .lbfgs
    public var featureWeight: Float = 1
    /// Adam's learning rate (L-BFGS takes the quasi-Newton step).
    public var learningRate: Double = 0.05
    let features: VGGFeatures
    let positions: Set<Int>

    public init(sampler: GeneratorSampler, method: Method = .lbfgs, featureWeight: Float = 1) throws {
        self.sampler = sampler
        self.method = method
        self.featureWeight = featureWeight
        var rng = PhiloxRandom(seed: 0, stream: stableHash("init/projection features"))
        let network = try VGGFeatures(architecture: .vgg19, pooling: .average, width: 16, rng: &rng)
        features = network
        positions = Set(["block1_conv2", "block2_conv2"].map { network.position(of: $0)! })
    }

    /// How `target` brings an image of another size to the generator's: a dataset's `fit`
    /// (`ImagePreprocessing.Fit`) without the random crop, or `exact`, which refuses any other size.
    public enum TargetFit: String, Sendable, CaseIterable {
        case resize, pad, centerCrop, stretch, exact

        /// The fit that prepares a projection target as a dataset stage's `fit` prepared the
        /// training images (a random crop becomes the centred one); nil for an unknown fit.
        public init?(datasetFit: String) {
            guard let fit = ImagePreprocessing.Fit(rawValue: datasetFit) else { return nil }
            self.init(rawValue: fit == .randomCrop ? TargetFit.centerCrop.rawValue : fit.rawValue)
        }
    }

    /// The image at `path` (any format `ImageFile` reads: PNG, JPEG, WebP, HEIC, AVIF; turned
    /// upright by its orientation) as a target `[1, C, H, W]` in [-1, 1] for a generator of images
    /// `shape` [C, H, W]: converted to C channels (`Image.converted`), and brought to H x W by
    /// `fit`, as a dataset stage with that `size` and `fit` serves its images. An image it cannot
    /// fit (padding to a smaller size, cropping a larger one, any other size with `exact`) is an
    /// error naming the file and both sizes.
    /// `fitSource` says in an error where the fit came from. Returns the file's header with the target.
    public static func target(_ path: String, shape: [Int], fit: TargetFit = .resize, fitSource: String = "--fit",
                              pixelLimit: Int = ImageFile.defaultPixelLimit) throws -> (image: Tensor, file: ImageHeader) {
        let (c, h, w) = (shape[0], shape[1], shape[2])
        func problem(_ message: String) -> PipelineErrors { PipelineErrors([PipelineError("project.image", file: path, message)]) }
        do {
            // Read once: the header decides the fit before any pixels are decoded from the same bytes.
            let bytes = try ImageFile.contents(of: path)
            let header = try ImageFile.header(bytes: bytes, path: path)
            let mismatch = "the image is \(header.width)x\(header.height) with \(channels(header.channels)); the generator makes \(w)x\(h) images with \(channels(c))"
            let sameSize = header.width == w && header.height == h
            if fit == .exact && !sameSize { throw problem(mismatch + " (--fit exact takes images of that size only)") }
            if !sameSize && h != w { throw problem(mismatch + ": only square images are fitted") }
            let preparation = ImagePreprocessing(channels: c, size: sameSize ? nil : h,
                                                 fit: ImagePreprocessing.Fit(rawValue: fit == .exact ? "resize" : fit.rawValue)!)
            do {
                _ = try preparation.itemShape(height: header.height, width: header.width)
            } catch let p as StageProblem {
                throw problem("fit \(fit.rawValue) (\(fitSource)): " + p.message.replacingOccurrences(of: "fit \"", with: "--fit \""))
            }
            let decoded = try ImageFile.decode(bytes: bytes, path: path, options: ImageDecodeOptions(
                pixelLimit: pixelLimit, atLeast: preparation.decodeSize))
            var unused = PhiloxRandom(seed: 0)
            let image = try preparation.apply(decoded, rng: &unused)
            return (try image.tensor(range: .symmetric).reshaped([1, c, h, w]), header)
        } catch let e as ImageIOError {
            throw PipelineErrors([PipelineError("project.image", file: e.path, e.reason)])
        } catch let e as TransformError {
            throw problem(e.message)
        }
    }

    /// "1 channel", "3 channels": a channel count as messages about images name it.
    public static func channels(_ n: Int) -> String { n == 1 ? "1 channel" : "\(n) channels" }

    func featureMaps(_ images: Tensor) throws -> [Tensor] {
        var x = (images + 1) * 0.5
        if x.shape[1] == 1 { x = try Tensor.concat([x, x, x], axis: 1) }
        let maps = try features.forward(x, positions: positions)
        return positions.sorted().map { maps[$0]! }
    }

    /// Optimises a latent for `target` `[1, C, H, W]` in [-1, 1] over `steps` steps. The search
    /// starts from the latents of `starts` seeds (`seed`, `seed + 1`, ...), runs a tenth of the
    /// steps from each (a generator's loss surface has poor local minima), and continues from the
    /// best. `progress` gets each step's number and loss.
    public func run(target: Tensor, steps: Int, seed: UInt64 = 0, starts: Int = 4,
                    progress: (Int, Double) -> Void = { _, _ in }) throws -> Result {
        let targetFeatures = try withoutGradients { try featureMaps(target) }
        let trial = starts > 1 ? max(1, steps / 10) : steps
        var best: (z: Tensor, losses: [Double])?
        for s in 0..<max(1, starts) {
            let z = try sampler.latent(seed: seed + UInt64(s)).copy().requiringGradients()
            let losses = try optimise(z, target: target, targetFeatures: targetFeatures, steps: trial) { _, _ in }
            if best == nil || losses.last! < best!.losses.last! { best = (z, losses) }
        }
        var (z, losses) = best!
        if trial < steps {
            losses += try optimise(z, target: target, targetFeatures: targetFeatures, steps: steps - trial) { progress(trial + $0, $1) }.dropFirst()
        }
        z = z.copy()
        let image = try sampler.images(of: z)
        let difference = zip(image.scalars, target.scalars).reduce(Float(0)) { $0 + abs($1.0 - $1.1) } / Float(target.count) / 2
        return Result(latent: z, image: image, losses: losses, pixelError: difference)
    }

    /// Moves `z` for `steps` steps; the losses at the start and after each step.
    func optimise(_ z: Tensor, target: Tensor, targetFeatures: [Tensor], steps: Int, progress: (Int, Double) -> Void) throws -> [Double] {
        func loss() throws -> Tensor {
            let image = try sampler.differentiableImage(of: z)
            let pixels = try ContentLossStage.loss([image], [target], weights: [1])
            guard featureWeight != 0 else { return pixels }
            return try pixels + ContentLossStage.loss(try featureMaps(image), targetFeatures,
                                                     weights: [Float](repeating: featureWeight / Float(positions.count), count: positions.count))
        }
        func evaluate() throws -> (loss: Double, gradient: [Float]) {
            let l = try loss()
            return (Double(l.item()), try gradients(of: l, wrt: [z])[0].scalars)
        }
        var losses = [try withoutGradients { Double(try loss().item()) }]
        switch method {
        case .lbfgs:
            let optimizer = try LBFGS(parameters: [("z", z)], historySize: 20, lineSearch: .strongWolfe)
            for step in 1...steps {
                let r = try optimizer.step(evaluate: evaluate)
                losses.append(r.loss)
                progress(step, r.loss)
                if r.converged { break }
            }
        case .adam:
            let optimizer = try Adam(parameters: [("z", z)], learningRate: learningRate)
            for step in 1...steps {
                let l = try loss()
                try optimizer.step(gradients: try gradients(of: l, wrt: [z]))
                losses.append(Double(l.item()))
                progress(step, Double(l.item()))
            }
        }
        return losses
    }
}

extension GeneratorSampler {
    /// The image of one latent `[1, dim]` (as `images(of:)` makes it), recorded for gradients.
    func differentiableImage(of latent: Tensor) throws -> Tensor {
        if let g = wSpace { return try g.synthesis(latent, movingAverage: movingAverage, truncation: truncation) }
        let z = try latent.reshaped([1] + generator.latentShape.dropFirst())
        let batch = try reference.map { try Tensor.concat([z, $0], axis: 0) } ?? z
        let images = try ClassLabels.with(try chosenLabels(1, reference: batch.shape[0] - 1)) {
            try generator.sampleForward(batch, movingAverage: movingAverage)
        }
        return try images.sliced(axis: 0, 0..<1)
    }
}
