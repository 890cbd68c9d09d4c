import ArgumentParser
import Foundation
import ImageIO
import NeuralNet
import PipelineGraph
import PipelineStages
import TensorRuntime

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write one model stage's weights as a PyTorch state_dict in safetensors, or a generator as an ONNX model.",
        discussion: """
            safetensors: the names are those of the equivalent nn.Sequential (see `ganflow stages`), so that
              model.load_state_dict(safetensors.torch.load_file("g.safetensors"), strict=True)
            works in PyTorch. Batch norm's num_batches_tracked is written as an int64 scalar.
            onnx (generators: MLP, DCGAN, ProGAN and MSG-GAN at their final resolution, StyleGAN2): input
            'z' [batch, dim] (and for a class-conditional generator 'labels' [batch], int64 class
            indices), output 'images' [batch, C, H, W], opset 17. Batch norm uses the batch's
            statistics, as `ganflow sample` does, so a batch gives the images GANFlow gives it; StyleGAN2
            uses each layer's constant noise, as `ganflow sample --noise const` does.
            """)

    @Argument(help: "A run directory (its newest checkpoint) or a checkpoint file.")
    var path: String

    @Option(help: "The model stage to export, e.g. G.")
    var stage: String

    @Option(help: "Output file (.safetensors or .onnx).")
    var out: String

    @Option(help: "safetensors (a state_dict) or onnx (a generator's whole network). (default: from --out's extension, .onnx or else safetensors)")
    var format: String?

    @Flag(help: "Export the moving average of the weights (the stage's 'ema') instead of the weights.")
    var ema = false

    @Option(help: "With --format onnx: truncation psi from 0 to 1 built into the model, as `ganflow sample --truncation` applies it (StyleGAN2: towards the mean w; others: latents scaled towards 0).")
    var truncation: Double = 1

    @Option(help: "Also write a probe, to check the export elsewhere: for a generator, latents 'z' and the images 'images' it makes from them (batch statistics); for a discriminator, images 'images' (uniform in [-1, 1]) and its outputs 'scores' for them.")
    var probe: String?

    /// The format written: `--format`, else the one `--out`'s extension names, else safetensors.
    var chosenFormat: String {
        format ?? Self.formatOfExtension((out as NSString).pathExtension) ?? "safetensors"
    }

    /// The format a file extension names, if it names one.
    static func formatOfExtension(_ ext: String) -> String? {
        ["safetensors": "safetensors", "onnx": "onnx"][ext.lowercased()]
    }

    func validate() throws {
        if let format {
            if !["safetensors", "onnx"].contains(format) { throw ValidationError("--format must be safetensors or onnx, not '\(format)'") }
            let ext = (out as NSString).pathExtension
            if let named = Self.formatOfExtension(ext), named != format {
                throw ValidationError("--format \(format) would write \(format) into '\(out)', whose extension .\(ext) names \(named): change one of them")
            }
        }
        if truncation != 1 && chosenFormat != "onnx" { throw ValidationError("--truncation is for --format onnx (a state_dict holds the weights, which do not depend on it)") }
    }

    func run() throws {
        do {
            if chosenFormat == "onnx" { return try exportONNX() }
            let run = try TrainedRun(path)
            let dict = try run.stateDict(stage: stage, ema: ema)
            try dict.write(to: out)
            print("wrote \(dict.names.count) tensors of stage '\(stage)'\(ema ? " (moving average)" : "") at step \(run.step) to \(out)")
            if let probe { try writeProbe(run, to: probe) }
        } catch {
            throw report(error)
        }
    }

    /// The probe of stage `stage`: a generator's images for seeded latents, or a discriminator's
    /// scores for seeded images of the size it was built for.
    func writeProbe(_ run: TrainedRun, to probe: String) throws {
        var rng = PhiloxRandom(seed: 0, stream: stableHash("ganflow probe"))
        var archive = SafeTensorsArchive(metadata: ["format": "pt"])
        if try run.isCritic(stage) {
            let (critic, shape) = try run.critic(stage)
            let images = Tensor(randomUniform: shape, low: -1, high: 1, using: &rng)
            let classes = try probeLabels(critic.classCount, rows: shape[0])
            archive.set("images", images)
            if let classes { archive.set("labels", classes) }
            archive.set("scores", try withoutGradients { try ClassLabels.with(classes) { try critic.critic(images) } })
            try archive.write(to: probe)
            print("wrote a probe of \(shape[0]) images\(classes == nil ? "" : ", their classes") and the discriminator's scores to \(probe)")
        } else {
            let (_, generator) = try run.generator(stage)
            let z = Tensor(randomNormal: generator.latentShape, using: &rng)
            let classes = try probeLabels(generator.classCount, rows: generator.latentShape[0])
            archive.set("z", z)
            if let classes { archive.set("labels", classes) }
            archive.set("images", try ClassLabels.with(classes) { try generator.generate(z, movingAverage: ema) })
            try archive.write(to: probe)
            print("wrote a probe of \(generator.latentShape[0]) latents\(classes == nil ? "" : ", their classes") and images to \(probe)")
        }
    }

    func exportONNX() throws {
        try LatentPath.checkTruncation(truncation)
        let run = try TrainedRun(path)
        let (id, generator) = try run.generator(stage)
        let (network, model): (any Layer, [UInt8])
        do {
            (network, model) = try GeneratorONNXExport.export(generator, ema: ema, name: "\(id)", truncation: Float(truncation))
        } catch let p as StageProblem {
            throw PipelineErrors([PipelineError("export.stage", file: run.checkpointPath, "stage '\(id)': \(p.message)")])
        }
        try AtomicFile.write(model, to: out)
        print("wrote stage '\(id)'\(ema ? " (moving average)" : "") at step \(run.step)\(truncation == 1 ? "" : ", truncation \(truncation),") as an ONNX model (\(model.count) bytes) to \(out)")
        if let probe {
            var rng = PhiloxRandom(seed: 0, stream: stableHash("ganflow probe"))
            let dim = generator.latentShape.dropFirst().reduce(1, *)
            let z = Tensor(randomNormal: [generator.latentShape[0], dim], using: &rng)
            var archive = SafeTensorsArchive(metadata: ["format": "pt"])
            archive.set("z", z)
            let labels = try probeLabels(generator.classCount, rows: z.shape[0])
            if let labels { archive.set("labels", labels) }
            archive.set("images", try GeneratorONNXExport.images(network, generator: generator, z: z, labels: labels, truncation: Float(truncation)))
            try archive.write(to: probe)
            print("wrote a probe of \(z.shape[0]) latents\(labels == nil ? "" : ", their classes") and the exported network's images to \(probe)")
        }
    }
}

/// The class labels of a probe of a network of `classes` classes (nil: unconditional): every
/// class in turn, as in its training batches.
private func probeLabels(_ classes: Int?, rows: Int) throws -> Tensor? {
    try classes.map { k in try Tensor(shape: [rows], scalars: (0..<rows).map { Float($0 % k) }) }
}
