import Dispatch
import Foundation
import ImageIO
import NeuralNet
import PipelineGraph
import Synchronization
import TensorRuntime

/// Turns latent vectors into images with a trained generator: random batches for `ganflow sample`,
/// given latents for `interpolate`, `sample --latent` and `project`.
///
/// A generator with batch norm normalises with the statistics of the batch it is given (as during
/// training and in its sample grids), so an image depends on the latents generated with it. For
/// random sampling that is what training did: each batch of the stage's size is a random batch.
/// A chosen latent (an interpolation frame, a projected latent, a truncated one) is generated
/// instead beside a fixed reference batch of random latents (virtual batch norm), so its image
/// depends on that latent alone. Truncation scales a latent towards the mean latent (0, as the
/// latents are N(0, 1)); with batch statistics, scaling a whole batch would be normalised away.
public final class GeneratorSampler {
    /// The per-pixel noise of a noisy generator's random samples (`NoisyGeneratorStage`).
    public enum Noise: String, Sendable, CaseIterable {
        /// Fresh noise for every image, drawn from the sampling seed (stylegan2-ada-pytorch's
        /// metrics and `G(z, c)`), as the pipeline's metrics sample.
        case random
        /// Each layer's constant noise (stylegan2-ada-pytorch's `generate.py`): an image is a
        /// function of its latent alone.
        case const
    }

    /// The space of chosen latents (`latent(seed:)`, `images(of:)`, projection and latent files).
    public enum LatentSpace: String, Sendable, CaseIterable {
        /// The generator's input latents, N(0, 1).
        case z
        /// StyleGAN's intermediate latents, the mapping network's outputs (`WSpaceGeneratorStage`);
        /// every layer takes the same `w`.
        case w
    }

    public let generator: any GeneratorStage
    /// The space of chosen latents; random samples are drawn in z either way.
    public let space: LatentSpace
    /// The noise of random samples; chosen latents (`images(of:)`) always get the constant noise.
    public let noise: Noise
    /// Whether the moving average of the weights generates (when the stage keeps one).
    public let movingAverage: Bool
    /// Truncation psi: 1 leaves latents as drawn, 0 gives the mean latent.
    public let truncation: Float
    /// The psi applied to input latents: `truncation`, or 1 for a generator that truncates in its
    /// own latent space (`TruncatingGeneratorStage`), which then gets `truncation` itself.
    public var latentTruncation: Float { generator is any TruncatingGeneratorStage ? 1 : truncation }
    /// Whether an image depends on the rest of its batch (batch norm with batch statistics).
    public let batchDependent: Bool
    /// The latents generated beside each chosen latent when `batchDependent`: [batch - 1, ...].
    let reference: Tensor?

    /// The class of a class-conditional generator's chosen latents (`latent(seed:)`,
    /// `images(of:)`, projection, the style-mixing grid); nil gives chosen latents mixed classes,
    /// as random samples get (and a conditional generator's w space needs it).
    public let chosenClass: Int?

    public init(_ generator: any GeneratorStage, movingAverage: Bool, truncation: Float = 1, noise: Noise = .random, space: LatentSpace = .z,
                chosenClass: Int? = nil) throws {
        if space == .w && !(generator is any WSpaceGeneratorStage) {
            throw StageProblem("this generator has no w space (only a StyleGAN2 generator's mapping network makes one): its latents are z")
        }
        if let c = chosenClass { try Self.checkClass(c, of: generator) }
        self.chosenClass = chosenClass
        self.generator = generator
        self.space = space
        self.noise = noise
        self.movingAverage = movingAverage && generator.hasMovingAverage
        self.truncation = truncation
        batchDependent = try generator.checkpointState().tensors.keys.contains { $0.hasSuffix("running_mean") }
        let shape = generator.latentShape
        if batchDependent && shape[0] > 1 {
            var rng = PhiloxRandom(seed: 0, stream: stableHash("ganflow reference batch"))
            reference = Tensor(randomNormal: [shape[0] - 1] + shape.dropFirst(), using: &rng)
        } else {
            reference = nil
        }
    }

    /// The batch size the stage was built for.
    public var batchSize: Int { generator.latentShape[0] }
    /// The length of one chosen latent vector (in `space`).
    public var latentDimension: Int {
        if space == .w, let g = generator as? any WSpaceGeneratorStage { return g.wDimension }
        return generator.latentShape.dropFirst().reduce(1, *)
    }

    /// The generator's w space, when latents are chosen there.
    var wSpace: (any WSpaceGeneratorStage)? { space == .w ? generator as? any WSpaceGeneratorStage : nil }

    /// What one sampling pass did, in counts: enough to check that memory and work per image do
    /// not grow with the number of images.
    public struct Statistics: Sendable, Equatable {
        /// Images generated and written.
        public var images = 0
        /// Forward passes of the generator.
        public var forwardPasses = 0
        /// Images generated in all forward passes (with any reference rows).
        public var rowsGenerated = 0
        /// The most batches of images held at once (generated, not yet written).
        public var peakResidentBatches = 0
    }

    /// The random latents of `sample --seed seed`, batch after batch: `[batch, ...]` tensors from
    /// one stream, truncated by `truncation`.
    public struct RandomLatents {
        var rng: PhiloxRandom
        let shape: [Int]
        let truncation: Float

        public mutating func next() -> Tensor {
            let z = Tensor(randomNormal: shape, using: &rng)
            LatentPath.truncate(z, psi: truncation)
            return z
        }
    }

    public func randomLatents(seed: UInt64) -> RandomLatents {
        RandomLatents(rng: PhiloxRandom(seed: seed, stream: stableHash("ganflow sample")), shape: generator.latentShape, truncation: latentTruncation)
    }

    /// The latent of one seed, as `interpolate --seeds` uses: the first latent `sample --seed` draws,
    /// truncated.
    public func latent(seed: UInt64) throws -> Tensor {
        var r = randomLatents(seed: seed)
        let batch = r.next()
        let z = try batch.sliced(axis: 0, 0..<1).copy().reshaped([1] + generator.latentShape.dropFirst())
        if let g = wSpace {
            if let k = generator.classCount, chosenClass == nil {
                throw StageProblem("this generator is class-conditional (\(k) classes): the w of a seed depends on the class; give the class with --class K")
            }
            return try ClassLabels.with(try chosenLabels(1)) { try g.mapping(z, movingAverage: movingAverage) }
        }
        return try z.reshaped([1, latentDimension])
    }

    /// Checks a chosen class against `generator`: it must be class-conditional, and the class one
    /// of its own. `options` names the command-line options that gave it.
    public static func checkClass(_ c: Int, of generator: any GeneratorStage, options: String = "--class") throws {
        let k = try classCount(of: generator, options: options)
        guard (0..<k).contains(c) else { throw StageProblem("class \(c) is not one of the generator's classes 0...\(k - 1)") }
    }

    /// The class count of a class-conditional `generator`; an error telling to remove `options`
    /// for any other.
    static func classCount(of generator: any GeneratorStage, options: String) throws -> Int {
        guard let k = generator.classCount else {
            throw StageProblem("this generator is not class-conditional; it takes no class (remove \(options))")
        }
        return k
    }

    /// Labels for `rows` chosen latents of `chosenClass`, then `reference` rows of mixed classes
    /// (a batch-norm generator's reference batch); nil without a chosen class.
    func chosenLabels(_ rows: Int, reference: Int = 0) throws -> Tensor? {
        guard let c = chosenClass, let k = generator.classCount else { return nil }
        return try Tensor(shape: [rows + reference], scalars: Array(repeating: Float(c), count: rows) + (0..<reference).map { Float($0 % k) })
    }

    /// `generateMixed(z, pass:)`, or with the labels of `rows` chosen latents (then reference
    /// rows) when a class is chosen.
    func generateChosen(_ z: Tensor, rows: Int, pass: Int) throws -> Tensor {
        guard let labels = try chosenLabels(rows, reference: z.shape[0] - rows) else { return try generateMixed(z, pass: pass) }
        return try ClassLabels.with(labels) { try generate(z) }
    }

    /// `count` images from random latents drawn with `seed`, batch by batch: `body` gets each
    /// batch's index and images `[n, C, H, W]` in [-1, 1] (the last batch may be smaller).
    ///
    /// Without truncation, each batch of the stage's size is generated at once (as the old
    /// `samples(count:seed:)` did, and with the same latents); truncated latents of a
    /// batch-dependent generator go through `images(of:)`.
    public func randomBatches(count: Int, seed: UInt64, statistics: inout Statistics, _ body: (Int, Tensor) throws -> Void) throws {
        var latents = randomLatents(seed: seed)
        var noiseRandom: PhiloxRandom? = noise == .random ? PhiloxRandom(seed: seed, stream: stableHash("ganflow sample noise")) : nil
        var made = 0, index = 0
        while made < count {
            let z = latents.next()
            let take = min(batchSize, count - made)
            let images: Tensor
            if truncation != 1 && batchDependent {
                images = try self.images(of: try z.sliced(axis: 0, 0..<take).reshaped([take, latentDimension]), statistics: &statistics)
            } else {
                let all = try generateMixed(z, pass: index, noise: &noiseRandom)
                statistics.forwardPasses += 1
                statistics.rowsGenerated += batchSize
                images = take == batchSize ? all : try all.sliced(axis: 0, 0..<take)
            }
            try body(index, images)
            made += take
            index += 1
        }
    }

    /// `count` random images in one tensor (see `randomBatches`).
    public func samples(count: Int, seed: UInt64) throws -> Tensor {
        precondition(count > 0)
        var chunks: [Tensor] = []
        var statistics = Statistics()
        try randomBatches(count: count, seed: seed, statistics: &statistics) { _, images in chunks.append(images) }
        return chunks.count == 1 ? chunks[0] : try Tensor.concat(chunks, axis: 0)
    }

    /// The images of chosen latents `[N, dim]`, each a function of its latent alone.
    public func images(of latents: Tensor) throws -> Tensor {
        var s = Statistics()
        return try images(of: latents, statistics: &s)
    }

    func images(of latents: Tensor, statistics: inout Statistics) throws -> Tensor {
        let n = latents.shape[0]
        if let g = wSpace {
            var out: [Tensor] = []
            var start = 0
            while start < n {
                let end = min(n, start + batchSize)
                out.append(try withoutGradients { try g.synthesis(try latents.sliced(axis: 0, start..<end), movingAverage: movingAverage, truncation: truncation) })
                statistics.forwardPasses += 1
                statistics.rowsGenerated += end - start
                start = end
            }
            return try Tensor.concat(out, axis: 0)
        }
        let rowShape = Array(generator.latentShape.dropFirst())
        if let reference {
            var out: [Tensor] = []
            out.reserveCapacity(n)
            for i in 0..<n {
                let z = try latents.sliced(axis: 0, i..<(i + 1)).reshaped([1] + rowShape)
                let batch = try generateChosen(try Tensor.concat([z, reference], axis: 0), rows: 1, pass: i)
                statistics.forwardPasses += 1
                statistics.rowsGenerated += batch.shape[0]
                out.append(try batch.sliced(axis: 0, 0..<1))
            }
            return try Tensor.concat(out, axis: 0)
        }
        var out: [Tensor] = []
        var start = 0
        while start < n {
            let end = min(n, start + batchSize)
            out.append(try generateChosen(try latents.sliced(axis: 0, start..<end).reshaped([end - start] + rowShape), rows: end - start, pass: start))
            statistics.forwardPasses += 1
            statistics.rowsGenerated += end - start
            start = end
        }
        return try Tensor.concat(out, axis: 0)
    }

    /// The generator's images of `z` without gradients, truncated inside the network when it
    /// truncates in its own latent space; a noisy generator's noise drawn from `noise` when given,
    /// its constant noise otherwise.
    func generate(_ z: Tensor, noise: inout PhiloxRandom?) throws -> Tensor {
        if var rng = noise, let g = generator as? any NoisyGeneratorStage {
            defer { noise = rng }
            return try withoutGradients { try g.sampleForward(z, movingAverage: movingAverage, truncation: truncation, noise: &rng) }
        }
        return try generate(z)
    }

    /// `generate(_:noise:)` with constant noise.
    func generate(_ z: Tensor) throws -> Tensor {
        if let g = generator as? any TruncatingGeneratorStage {
            return try withoutGradients { try g.sampleForward(z, movingAverage: movingAverage, truncation: truncation) }
        }
        return try generator.generate(z, movingAverage: movingAverage)
    }

    /// Writes `count` random samples as PNGs, `sample-NNNNN.png` in `directory`: one batch is
    /// generated while the one before is encoded on `workers` threads; at most `inFlight`
    /// batches wait to be written, so memory does not grow with `count`. `progress` hears the
    /// number of images generated so far after each batch.
    public func writePNGs(count: Int, seed: UInt64, to directory: String, workers: Int = 2, inFlight: Int = 2,
                          progress: ((Int) -> Void)? = nil) throws -> Statistics {
        var statistics = Statistics()
        let slots = DispatchSemaphore(value: inFlight)
        let group = DispatchGroup()
        let queue = DispatchQueue(label: "ganflow.sample.encode")
        let state = Mutex<(resident: Int, peak: Int, error: (any Error)?)>((0, 0, nil))
        let batch = batchSize
        var written = 0
        try randomBatches(count: count, seed: seed, statistics: &statistics) { index, images in
            if let error = state.withLock({ $0.error }) { throw error }
            slots.wait()
            state.withLock {
                $0.resident += 1
                $0.peak = max($0.peak, $0.resident)
            }
            queue.async(group: group) {
                do {
                    try PNG.writeBatch(images, range: .symmetric, workers: workers) { i in
                        (directory as NSString).appendingPathComponent(String(format: "sample-%05d.png", index * batch + i))
                    }
                } catch {
                    state.withLock { if $0.error == nil { $0.error = error } }
                }
                state.withLock { $0.resident -= 1 }
                slots.signal()
            }
            written += images.shape[0]
            progress?(written)
        }
        group.wait()
        statistics.images = written
        let (_, peak, error) = state.withLock { $0 }
        if let error { throw error }
        statistics.peakResidentBatches = peak
        return statistics
    }
}

extension GeneratorStage {
    /// `count` images from latents drawn with `seed`, generated in batches of the size the stage
    /// was built for (batch norm uses batch statistics when sampling, as during training), from
    /// the moving average when the stage keeps one, unless `raw`.
    public func samples(count: Int, seed: UInt64, raw: Bool = false) throws -> Tensor {
        try GeneratorSampler(self, movingAverage: !raw).samples(count: count, seed: seed)
    }
}
