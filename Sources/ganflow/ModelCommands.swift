import ArgumentParser
import Foundation
import ImageIO
import PipelineGraph
import PipelineStages
import TensorRuntime

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write one model stage's weights as a PyTorch state_dict in safetensors.",
        discussion: """
            The names are those of the equivalent nn.Sequential (see `ganflow stages`), so that
              model.load_state_dict(safetensors.torch.load_file("g.safetensors"), strict=True)
            works in PyTorch. Batch norm's num_batches_tracked is written as an int64 scalar.
            """)

    @Argument(help: "A run directory (its newest checkpoint) or a checkpoint file.")
    var path: String

    @Option(help: "The model stage to export, e.g. G.")
    var stage: String

    @Option(help: "Output file (.safetensors).")
    var out: String

    @Flag(help: "Export the moving average of the weights (the stage's 'ema') instead of the weights.")
    var ema = false

    @Option(help: "Also write a generator's probe: latents 'z' and the images 'images' it makes from them (batch statistics), to check the export elsewhere.")
    var probe: String?

    func run() throws {
        do {
            let run = try TrainedRun(path)
            let dict = try run.stateDict(stage: stage, ema: ema)
            try dict.write(to: out)
            print("wrote \(dict.names.count) tensors of stage '\(stage)'\(ema ? " (moving average)" : "") at step \(run.step) to \(out)")
            if let probe {
                let (_, generator) = try run.generator(stage)
                var rng = PhiloxRandom(seed: 0, stream: stableHash("ganflow probe"))
                let z = Tensor(randomNormal: generator.latentShape, using: &rng)
                var archive = SafeTensorsArchive(metadata: ["format": "pt"])
                archive.set("z", z)
                archive.set("images", try generator.generate(z, movingAverage: ema))
                try archive.write(to: probe)
                print("wrote a probe of \(generator.latentShape[0]) latents and images to \(probe)")
            }
        } catch {
            throw report(error)
        }
    }
}

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Generate images from a trained run's generator (its moving average when it keeps one).")

    @Argument(help: "A run directory (its newest checkpoint) or a checkpoint file.")
    var path: String

    @Option(help: "Number of images.")
    var count: Int = 64

    @Option(help: "Output directory.")
    var out: String

    @Option(help: "Seed of the latent vectors.")
    var seed: Int = 0

    @Flag(help: "Write one grid image (grid.png) instead of one PNG per sample.")
    var grid = false

    @Option(help: "The generator stage (default: the pipeline's only generator).")
    var stage: String?

    @Flag(help: "Sample the trained weights themselves, not their moving average.")
    var raw = false

    func validate() throws {
        if count < 1 { throw ValidationError("--count must be at least 1") }
        if seed < 0 { throw ValidationError("--seed must be >= 0") }
    }

    func run() throws {
        do {
            let trained = try TrainedRun(path)
            let (id, generator) = try trained.generator(stage)
            let images = try generator.samples(count: count, seed: UInt64(seed), raw: raw)
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let weights = generator.hasMovingAverage ? (raw ? " (weights, not their moving average)" : " (moving average)") : ""
            let source = "stage '\(id)'\(weights) at step \(trained.step)"
            if grid {
                let file = (out as NSString).appendingPathComponent("grid.png")
                let columns = Int(Double(count).squareRoot().rounded(.up))
                try SampleGrid.write(images, to: file, nrow: columns)
                print("wrote a grid of \(count) samples from \(source) to \(file)")
            } else {
                for i in 0..<count {
                    var image = try Image(images, index: i)
                    image.pixels = image.pixels.map { PixelRange.symmetric.toUnit($0) }
                    try PNG.write(image, to: (out as NSString).appendingPathComponent(String(format: "sample-%05d.png", i)))
                }
                print("wrote \(count) samples from \(source) to \(out)")
            }
        } catch {
            throw report(error)
        }
    }
}
