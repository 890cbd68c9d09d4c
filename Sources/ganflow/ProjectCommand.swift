import ArgumentParser
import Foundation
import ImageIO
import PipelineGraph
import PipelineStages
import Reporting
import TensorRuntime

struct ProjectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "project",
        abstract: "Find the latent whose image reproduces a given image (PNG, JPEG, WebP, HEIC or AVIF, fitted to the generator's size and channels).",
        discussion: """
            Minimises the mean squared pixel difference plus a feature difference (features.random's \
            network at block1_conv2 and block2_conv2) over the latent, from the best of the latents of --starts seeds from --seed. \
            Writes reconstruction.png, target.png (the image as read), side-by-side.png, latent.safetensors \
            (tensor 'z', or 'w' in w space, which `ganflow sample --latent` and `ganflow interpolate --latent` accept), \
            losses.csv and loss.svg (the loss curve). A StyleGAN2 generator is searched in its w space by default \
            (every layer takes the same w, as stylegan2-ada-pytorch's projector), from the w of each start seed. \
            The image is converted to the generator's channels and brought to its size as the run's dataset stage \
            brought the training images (its 'fit': pad, resize, ...), or as --fit says; target.png shows the result.
            """)

    @OptionGroup var generator: GeneratorOptions

    @Option(name: .customLong("class"), help: "A class-conditional generator's class: the latent is searched within it.")
    var imageClass: Int?

    @Option(help: "The image to reproduce: PNG, JPEG, WebP, HEIC or AVIF, any size (see --fit).")
    var image: String

    @Option(help: "How an image of another size reaches the generator's: resize (shorter side, then centre crop), pad, centerCrop, stretch, or exact (refuse other sizes). Default: the fit of the run's dataset stage of that size, else resize.")
    var fit: Projection.TargetFit?

    @Option(name: .customLong("max-pixels"), help: "Largest width x height the image's header may declare (decompression bombs are refused).")
    var maxPixels: Int = ImageFile.defaultPixelLimit

    @Option(help: "Output directory.")
    var out: String

    @Option(help: "Optimisation steps (L-BFGS iterations or Adam steps).")
    var steps: Int = 100

    @Option(help: "lbfgs or adam.")
    var method: String = "lbfgs"

    @Option(help: "Weight of the feature loss beside the pixel loss (0: pixels only).")
    var featureWeight: Double = 1

    @Option(help: "The first seed whose latent the search starts from.")
    var seed: Int = 0

    @Option(help: "Seeds tried as starts (a tenth of the steps each); the best one continues.")
    var starts: Int = 4

    @Option(help: "The latent space searched: z, or w (a StyleGAN2 generator's intermediate latents). Default: w where the generator has it, z otherwise.")
    var space: GeneratorSampler.LatentSpace?

    func validate() throws {
        if steps < 1 { throw ValidationError("--steps must be at least 1") }
        if seed < 0 { throw ValidationError("--seed must be >= 0") }
        if starts < 1 { throw ValidationError("--starts must be at least 1") }
        if Projection.Method(rawValue: method) == nil { throw ValidationError("--method must be lbfgs or adam, not '\(method)'") }
        if !(featureWeight >= 0) { throw ValidationError("--feature-weight must be >= 0") }
        if maxPixels < 1 { throw ValidationError("--max-pixels must be positive") }
    }

    func run() throws {
        do {
            let (run, _, sampler, source) = try generator.open(space: space, chosenClass: imageClass, needsClass: true)
            let shape = Array(try sampler.images(of: Tensor(zeros: [1, sampler.latentDimension])).shape.dropFirst())
            let trained = run.datasetFit(side: shape[1])
            let chosenFit = fit ?? trained.flatMap { Projection.TargetFit(datasetFit: $0.fit) } ?? .resize
            let why = fit != nil ? "--fit" : trained.map { "as the run's stage '\($0.stage)'" } ?? "the default"
            let (target, header) = try Projection.target(image, shape: shape, fit: chosenFit, fitSource: why, pixelLimit: maxPixels)
            if header.width != shape[2] || header.height != shape[1] || header.channels != shape[0] {
                let plural = Projection.channels
                FileHandle.standardError.write(Data("fitted \(image) (\(header.width)x\(header.height), \(plural(header.channels))) to \(shape[2])x\(shape[1]) with \(plural(shape[0])): \(chosenFit.rawValue) (\(why)); see target.png\n".utf8))
            }
            let projection = try Projection(sampler: sampler, method: Projection.Method(rawValue: method)!, featureWeight: Float(featureWeight))
            let start = Date()
            let result = try projection.run(target: target, steps: steps, seed: UInt64(seed), starts: starts) { step, loss in
                if step % 10 == 0 || step == steps { FileHandle.standardError.write(Data("step \(step)/\(steps) loss \(loss)\n".utf8)) }
            }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try SampleGrid.write(result.image, to: file("reconstruction.png"), nrow: 1, padding: 0)
            try SampleGrid.write(target, to: file("target.png"), nrow: 1, padding: 0)
            try SampleGrid.write(try Tensor.concat([target, result.image], axis: 0), to: file("side-by-side.png"), nrow: 2)
            try LatentPath.writeLatents(result.latent, to: file("latent.safetensors"), space: sampler.space,
                                        metadata: ["ganflow.image": image, "ganflow.run": generator.path, "ganflow.truncation": "\(generator.truncation)"])
            try (["step,loss"] + result.losses.enumerated().map { "\($0.offset),\($0.element)" }).joined(separator: "\n")
                .appending("\n").write(toFile: file("losses.csv"), atomically: true, encoding: .utf8)
            let curve = HTML.lineChart(title: "projection loss", series: [("loss", result.losses.enumerated().map { ($0.offset, $0.element) })])
            try curve.write(toFile: file("loss.svg"), atomically: true, encoding: .utf8)
            let seconds = Date().timeIntervalSince(start)
            print(String(format: "projected %@ with %@ in %@ in %d steps (%.1f s): loss %.4g -> %.4g, mean pixel error %.4f; wrote reconstruction.png, latent.safetensors, loss.svg to %@",
                         image, source, sampler.space.rawValue, result.losses.count - 1, seconds, result.losses.first!, result.losses.last!, result.pixelError, out))
        } catch {
            throw report(error)
        }
    }

    func file(_ name: String) -> String { (out as NSString).appendingPathComponent(name) }
}
