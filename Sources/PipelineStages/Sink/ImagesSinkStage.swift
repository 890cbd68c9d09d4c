import Foundation
import ImageIO
import PipelineGraph
import TensorRuntime

/// Writes every image of a batch as its own PNG: `images/step-00000250/0000.png`, ... (for metrics or users).
///
///     "dump": { "type": "sink.images", "input": "G.images", "every": 1000 }
///
/// Written on a background queue with at most `pending` batches waiting, as `sink.grid`.
public final class ImagesSinkStage: Stage, @unchecked Sendable {
    public static let typeName = "sink.images"
    public static let summary = "Every image of a batch as its own PNG, in <folder>/step-NNNNNNNN/NNNN.png."
    public static let lane = StageLane.output
    public static let configKeys: [ConfigKey] = [
        ConfigKey("input", .wire, "Images [N, C, H, W] in [-1, 1] (C of 1 to 4)."),
        ConfigKey("bitDepth", .int(min: 8, max: 16), default: .number(8), "8 or 16 bits per sample."),
        ConfigKey("folder", .path, default: .string("images"), "Folder for the images, under the run's output directory."),
        ConfigKey("pending", .int(min: 1, max: 64), default: .number(2), "Batches that may wait to be written before the run waits for the disk."),
    ]

    public let outputs: [String: PortType] = ["written": .effect]
    let folder: String
    let bitDepth: PNG.BitDepth
    let writer: BackgroundWriter

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        try SinkSupport.checkImages(inputs["input"], channels: 1...4)
        guard let depth = PNG.BitDepth(rawValue: config.int("bitDepth")) else {
            throw StageProblem(key: "bitDepth", "expected 8 or 16, found \(config.int("bitDepth"))")
        }
        bitDepth = depth
        folder = try SinkSupport.folder(config.string("folder"), in: context.outputDirectory)
        writer = BackgroundWriter(label: "ganflow.sink.\(config.stageID)", limit: config.int("pending"))
    }

    /// The folder written for `step`.
    public func path(step: Int) -> String {
        (folder as NSString).appendingPathComponent(SinkSupport.stepName(step))
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let images = try e.tensor("input").copy()
        let dir = path(step: e.step)
        let bitDepth = self.bitDepth
        try writer.submit {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for i in 0..<images.shape[0] {
                var image = try Image(images, index: i)
                for k in 0..<image.pixels.count { image.pixels[k] = PixelRange.symmetric.toUnit(image.pixels[k]) }
                try PNG.write(image, to: (dir as NSString).appendingPathComponent(String(format: "%04d.png", i)), bitDepth: bitDepth)
            }
        }
        return ["written": .effect]
    }

    public func finish() throws { try writer.drain() }
}
