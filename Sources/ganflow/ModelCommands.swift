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
