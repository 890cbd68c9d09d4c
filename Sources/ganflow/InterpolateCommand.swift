import ArgumentParser
import Foundation
import ImageIO
import PipelineGraph
import PipelineStages
import TensorRuntime

struct InterpolateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "interpolate",
        abstract: "Walk a trained generator's latent space between seeds (or latents) and write the frames, a strip and an animation.",
        discussion: """
            Writes frame-NNNN.png (every frame, in order), strip.png (one row per segment, both ends \
            shown) and animation.png (an animated PNG of the frames, looping; browsers and Pillow \
            play it, other viewers show the first frame). A seed's latent is the first latent \
            `ganflow sample --seed SEED` draws. Each frame depends on its latent alone (batch-norm \
            generators generate it beside a fixed reference batch; a StyleGAN2 generator uses its \
            constant noise, so a seed's frame is the image of `ganflow sample --seed SEED --noise const`).
            """)

    @OptionGroup var generator: GeneratorOptions

    @Option(name: .customLong("class"), help: "A class-conditional generator's class: every frame is of it.")
    var imageClass: Int?

    @Option(help: "Output directory.")
    var out: String

    @Option(help: "The seed to start from.")
    var from: Int?

    @Option(help: "The seed to end at.")
    var to: Int?

    @Option(help: "Seeds to pass through in order, e.g. 1,2,3 or 0,5-8.")
    var seeds: String?

    @Option(help: "Pass through the latents of this safetensors file (tensor 'z' [N, dim], or a StyleGAN2 generator's 'w' [N, wDim]; N >= 2) instead of seeds.")
    var latent: String?

    @Option(help: "The space to walk: z (the generator's input latents) or w (a StyleGAN2 generator's intermediate latents, where seeds are mapped first; linear only). Default: z, or the latent file's.")
    var space: GeneratorSampler.LatentSpace?

    @Option(help: "Frames per segment, both ends included.")
    var frames: Int = 8

    @Flag(help: "Spherical interpolation (along great circles) instead of straight lines.")
    var slerp = false

    @Option(help: "Milliseconds each frame of the animation shows.")
    var delay: Int = 100

    func validate() throws {
        if frames < 2 { throw ValidationError("--frames must be at least 2") }
        if !(1...65535).contains(delay) { throw ValidationError("--delay must be between 1 and 65535 ms") }
        let ways = [from != nil || to != nil, seeds != nil, latent != nil].filter { $0 }.count
        if ways != 1 { throw ValidationError("give one of --from SEED --to SEED, --seeds LIST or --latent FILE") }
        if (from == nil) != (to == nil) { throw ValidationError("--from and --to go together") }
        if let from, from < 0 { throw ValidationError("--from must be >= 0") }
        if let to, to < 0 { throw ValidationError("--to must be >= 0") }
        if slerp && space == .w { throw ValidationError("--slerp walks great circles of N(0, 1) latents; w latents are walked along straight lines (leave out --slerp)") }
    }

    func run() throws {
        do {
            let fileSpace = try latent.map(LatentPath.space(ofFile:))
            if let latent, let fileSpace, let space, space != fileSpace {
                throw PipelineErrors([PipelineError("latent.file", file: latent,
                    "holds latents in \(fileSpace.rawValue) (tensor '\(LatentPath.tensorName(fileSpace))'), not in \(space.rawValue) as --space asks")])
            }
            let chosen = space ?? fileSpace ?? .z
            if slerp, chosen == .w, let latent {
                throw PipelineErrors([PipelineError("latent.file", file: latent, "holds w latents, which are walked along straight lines (leave out --slerp)")])
            }
            let (_, _, sampler, source) = try generator.open(space: chosen, spaceSource: latent == nil ? ("option.space", nil) : ("latent.file", latent),
                                                                 chosenClass: imageClass, needsClass: latent == nil || chosen == .z)
            let keys: Tensor
            if let latent {
                keys = LatentPath.truncated(try LatentPath.readLatents(latent, dimension: sampler.latentDimension, space: chosen), psi: sampler.latentTruncation)
            } else {
                let list = try seeds.map(LatentPath.parseSeeds) ?? [UInt64(from!), UInt64(to!)]
                keys = try Tensor.concat(list.map { try sampler.latent(seed: $0) }, axis: 0)
            }
            guard keys.shape[0] >= 2 else {
                if let latent {
                    throw PipelineErrors([PipelineError("latent.file", file: latent, "interpolation needs at least two latents, the file holds \(keys.shape[0])")])
                }
                throw PipelineErrors([PipelineError("option.seeds", "interpolation needs at least two seeds or latents, found \(keys.shape[0])")])
            }
            let path = try LatentPath.interpolate(keys, frames: frames, slerp: slerp)
            let images = try sampler.images(of: path)
            // Consecutive segments share their joint: the animation shows it once.
            let segments = keys.shape[0] - 1
            let sequence = (0..<images.shape[0]).filter { $0 % frames != 0 || $0 == 0 }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try NumberedFiles.frame.refuseLeftovers(in: out, writing: sequence.count)
            let sequenceImages = try sequence.map { i in
                var image = try Image(images, index: i)
                image.pixels = image.pixels.map { PixelRange.symmetric.toUnit($0) }
                return image
            }
            for (n, image) in sequenceImages.enumerated() {
                try PNG.write(image, to: file(String(format: "frame-%04d.png", n)))
            }
            try SampleGrid.write(images, to: file("strip.png"), nrow: frames)
            try APNG.write(sequenceImages, to: file("animation.png"), delay: (UInt16(delay), 1000))
            print("wrote \(sequenceImages.count) frames (\(segments) segment\(segments == 1 ? "" : "s") of \(frames), \(slerp ? "spherical" : "linear")\(chosen == .w ? " in w" : "")) from \(source) to \(out): frame-*.png, strip.png, animation.png")
        } catch {
            throw report(error)
        }
    }

    func file(_ name: String) -> String { (out as NSString).appendingPathComponent(name) }
}
