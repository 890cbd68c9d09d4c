import ArgumentParser
import Foundation
import ImageIO
import PipelineGraph
import PipelineStages
import TensorRuntime

/// Options shared by the commands that run a trained generator.
struct GeneratorOptions: ParsableArguments {
    @Argument(help: "A run directory (its newest checkpoint) or a checkpoint file.")
    var path: String

    @Option(help: "The generator stage (default: the pipeline's only generator).")
    var stage: String?

    @Flag(help: "Use the trained weights themselves, not their moving average.")
    var raw = false

    @Option(help: "Truncation psi from 0 to 1: move latents towards the mean latent (1: none).")
    var truncation: Double = 1

    /// The run, its generator and a sampler for it (`noise` for a noisy generator's random
    /// samples; chosen latents in `space`, or with nil in w where the generator has a w space and
    /// in z otherwise); `--truncation` checked first. A space the generator lacks is an error
    /// naming `spaceSource` (the option or file that asked for it).
    ///
    /// `chosenClass` is the class of chosen latents (`--class`); with `needsClass`, a
    /// class-conditional generator without one is an error.
    func open(noise: GeneratorSampler.Noise = .const, space: GeneratorSampler.LatentSpace? = .z,
              spaceSource: (path: String, file: String?) = ("option.space", nil), chosenClass: Int? = nil,
              needsClass: Bool = false) throws -> (run: TrainedRun, id: String, sampler: GeneratorSampler, source: String) {
        try LatentPath.checkTruncation(truncation)
        let run = try TrainedRun(path)
        let (id, generator) = try run.generator(stage)
        if needsClass, chosenClass == nil, let k = generator.classCount {
            throw PipelineErrors([PipelineError("option.class", file: run.checkpointPath,
                                                "stage '\(id)' is class-conditional (\(k) classes): give the class of the latents with --class K")])
        }
        do {
            if let chosenClass { try GeneratorSampler.checkClass(chosenClass, of: generator) }
        } catch let p as StageProblem {
            throw PipelineErrors([PipelineError("option.class", file: run.checkpointPath, "stage '\(id)': \(p.message)")])
        }
        let chosen = space ?? (generator is any WSpaceGeneratorStage ? .w : .z)
        let sampler: GeneratorSampler
        do {
            sampler = try GeneratorSampler(generator, movingAverage: !raw, truncation: Float(truncation), noise: noise, space: chosen,
                                           chosenClass: chosenClass)
        } catch let p as StageProblem {
            throw PipelineErrors([PipelineError(spaceSource.path, file: spaceSource.file ?? run.checkpointPath, "stage '\(id)': \(p.message)")])
        }
        let weights = generator.hasMovingAverage ? (raw ? " (weights, not their moving average)" : " (moving average)") : ""
        let psi = truncation == 1 ? "" : ", truncation \(truncation)"
        return (run, id, sampler, "stage '\(id)'\(weights) at step \(run.step)\(psi)")
    }
}

extension GeneratorSampler.Noise: ExpressibleByArgument {}
extension GeneratorSampler.LatentSpace: ExpressibleByArgument {}
extension Projection.TargetFit: ExpressibleByArgument {}

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Generate images from a trained run's generator (its moving average when it keeps one).",
        discussion: """
            Random latents are generated in batches of the size the generator was trained with (batch \
            norm then uses that batch's statistics, as in training) and written as PNGs on two threads \
            while the next batch is generated. Latents from a file (--latent, as `ganflow project` \
            writes) or truncated ones are each generated beside a fixed reference batch, so that an \
            image depends on its latent alone.
            """)

    @OptionGroup var generator: GeneratorOptions

    @Option(help: "Number of images (with --latent: that file's latents).")
    var count: Int = 64

    @Option(help: "Output directory.")
    var out: String

    @Option(help: "Seed of the latent vectors.")
    var seed: Int = 0

    @Option(help: "Generate the latents of this safetensors file (tensor 'z' [N, dim], or a StyleGAN2 generator's 'w' [N, wDim] as `ganflow project` writes) instead of random ones.")
    var latent: String?

    @Flag(help: "Write one grid image (grid.png) instead of one PNG per sample.")
    var grid = false

    @Option(help: "Write a style-mixing grid (mix.png, StyleGAN2): --count sources per side (at most 8), the style inputs below this crossover from the left column's latents, the rest from the top row's.")
    var mix: Int?

    @Option(help: "A StyleGAN2 generator's per-pixel noise in random samples: random (fresh for every image, as the pipeline's metrics and stylegan2-ada-pytorch's metrics draw it) or const (each layer's constant noise, as its generate.py). Chosen latents (--latent, --mix) always get the constant noise.")
    var noise: GeneratorSampler.Noise = .random

    @Option(name: .customLong("class"), help: "A class-conditional generator's class: --count images of it (with --latent or --mix, the class of those latents).")
    var imageClass: Int?

    @Option(help: "Several classes, e.g. 0,3,7: --count images of each (in class-K/ folders; with --grid one row per class, each column one latent).")
    var classes: String?

    /// The classes asked for with --class or --classes, or nil.
    func requestedClasses() throws -> [Int]? {
        if imageClass != nil && classes != nil { throw ValidationError("give --class or --classes, not both") }
        if let imageClass { return [imageClass] }
        guard let classes else { return nil }
        let ids = classes.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !ids.isEmpty, ids.allSatisfy({ $0 != nil }) else {
            throw ValidationError("--classes must be class numbers separated by commas, such as 0,3,7; found '\(classes)'")
        }
        return ids.map { $0! }
    }

    @Flag(help: "No progress bar (it is drawn only when standard error is a terminal).")
    var quiet = false

    func validate() throws {
        if count < 1 { throw ValidationError("--count must be at least 1") }
        if seed < 0 { throw ValidationError("--seed must be >= 0") }
        if classes != nil && (latent != nil || mix != nil) { throw ValidationError("--classes draws its own latents; it cannot be used with --latent or --mix (give one class with --class)") }
        if mix != nil && latent != nil { throw ValidationError("--mix draws its own latents; it cannot be used with --latent") }
    }

    func run() throws {
        do {
            // Latents from a file are in the space the file says (tensor 'z' or 'w').
            let space = try latent.map(LatentPath.space(ofFile:)) ?? .z
            // --latent and --mix choose latents; their class is --class.
            let chosen = latent != nil || mix != nil
            let (run, id, sampler, source) = try generator.open(noise: noise, space: space, spaceSource: ("latent.file", latent),
                                                                chosenClass: chosen ? imageClass : nil, needsClass: mix != nil || (latent != nil && space == .z))
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            if let mix {
                let n = min(count, 8)
                let images = try StyleMixingGrid.images(sampler, count: n, crossover: mix, seed: UInt64(seed))
                let file = (out as NSString).appendingPathComponent("mix.png")
                try SampleGrid.write(images, to: file, nrow: n + 1)
                print("wrote a style-mixing grid of \(n)x\(n) images (crossover \(mix)) from \(source) to \(file)")
            } else if !chosen, let classes = try requestedClasses() {
                do {
                    try writeClasses(classes, sampler: sampler, source: source)
                } catch let p as StageProblem {
                    throw PipelineErrors([PipelineError("sample.class", file: run.checkpointPath, "stage '\(id)': \(p.message)")])
                }
            } else if let latent {
                let z = try LatentPath.readLatents(latent, dimension: sampler.latentDimension, space: space)
                let images = try sampler.images(of: LatentPath.truncated(z, psi: sampler.latentTruncation))
                if grid {
                    try writeGrid(images, source: source)
                } else {
                    try NumberedFiles.sample.refuseLeftovers(in: out, writing: images.shape[0])
                    try PNG.writeBatch(images, range: .symmetric) { [out] i in (out as NSString).appendingPathComponent(String(format: "sample-%05d.png", i)) }
                    print("wrote \(images.shape[0]) samples of the latents in \(latent) from \(source) to \(out)")
                }
            } else if grid {
                try writeGrid(try sampler.samples(count: count, seed: UInt64(seed)), source: source)
            } else {
                try NumberedFiles.sample.refuseLeftovers(in: out, writing: count)
                let bar = ProgressBar(enabled: !quiet, terminalOnly: true)
                defer { bar.end() }
                let statistics = try sampler.writePNGs(count: count, seed: UInt64(seed), to: out) { bar.show($0, count) }
                bar.end()
                print("wrote \(statistics.images) samples from \(source) to \(out)")
            }
        } catch {
            throw report(error)
        }
    }

    /// --class and --classes: `count` images of each class, or a class grid.
    func writeClasses(_ classes: [Int], sampler: GeneratorSampler, source: String) throws {
        let list = classes.map(String.init).joined(separator: ",")
        if grid {
            let images = try sampler.classGrid(classes: classes, columns: count, seed: UInt64(seed))
            let file = (out as NSString).appendingPathComponent("grid.png")
            try SampleGrid.write(images, to: file, nrow: count)
            print("wrote a class grid (rows: classes \(list); \(count) latents) from \(source) to \(file)")
            return
        }
        // One class writes into the output folder itself; several, into class-K/ folders.
        let folder: @Sendable (Int) -> String = { [out] c in classes.count == 1 ? out : (out as NSString).appendingPathComponent("class-\(c)") }
        for c in classes {
            try FileManager.default.createDirectory(atPath: folder(c), withIntermediateDirectories: true)
            try NumberedFiles.sample.refuseLeftovers(in: folder(c), writing: count)
        }
        let bar = ProgressBar(enabled: !quiet, terminalOnly: true)
        defer { bar.end() }
        var written = 0
        try sampler.classBatches(classes: classes, count: count, seed: UInt64(seed)) { c, first, images in
            let dir = folder(c)
            try PNG.writeBatch(images, range: .symmetric) { i in
                (dir as NSString).appendingPathComponent(String(format: "sample-%05d.png", first + i))
            }
            written += images.shape[0]
            bar.show(written, count * classes.count)
        }
        bar.end()
        print("wrote \(count) samples of class\(classes.count == 1 ? "" : "es") \(list) from \(source) to \(out)")
    }

    func writeGrid(_ images: Tensor, source: String) throws {
        let file = (out as NSString).appendingPathComponent("grid.png")
        let columns = Int(Double(images.shape[0]).squareRoot().rounded(.up))
        try SampleGrid.write(images, to: file, nrow: columns)
        print("wrote a grid of \(images.shape[0]) samples from \(source) to \(file)")
    }
}
