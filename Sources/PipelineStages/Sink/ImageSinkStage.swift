import Foundation
import ImageIO
import PipelineGraph
import TensorRuntime

/// Writes an image every `every` steps, `images/step-00000050.png`, and the last one as `final.png`.
///
///     "save": { "type": "sink.image", "input": "X.image", "every": 50 }
///
/// The input is one image [1, C, H, W] (C of 1 to 4) in [0, 1] (or [-1, 1] with `range:
/// symmetric`). Sinks also run at the last step, and when the run finishes the last image written
/// is written again as `final` (relative to the run's output directory). Writing happens on a
/// background queue, as for `sink.grid`.
public final class ImageSinkStage: Stage, @unchecked Sendable {
    public static let typeName = "sink.image"
    public static let summary = "One image as <folder>/step-NNNNNNNN.png every 'every' steps, and the last as 'final'."
    public static let lane = StageLane.output
    public static let configKeys: [ConfigKey] = [
        ConfigKey("input", .wire, "One image [1, C, H, W] (C of 1 to 4)."),
        ConfigKey("range", .string(choices: ["unit", "symmetric"]), default: .string("unit"), "Values in [0, 1] (unit) or [-1, 1] (symmetric)."),
        ConfigKey("folder", .path, default: .string("images"), "Folder for the images, under the run's output directory."),
        ConfigKey("final", .path, default: .string("final.png"), "File for the last image, under the run's output directory."),
        ConfigKey("bitDepth", .int(min: 8, max: 16), default: .number(8), "8 or 16 bits per sample."),
    ]

    public let outputs: [String: PortType] = ["written": .effect]
    let folder: String
    let finalPath: String
    let range: PixelRange
    let bitDepth: PNG.BitDepth
    let writer = BackgroundWriter(label: "ganflow.sink.image", limit: 2)
    var last: Image?

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        guard let s = inputs["input"]?.shape, s.count == 4, s[0] == 1, (1...4).contains(s[1]) else {
            throw StageProblem(key: "input", "expected one image [1, C, H, W] with C of 1 to 4, found \(inputs["input"].map { "\($0)" } ?? "nothing")")
        }
        guard let depth = PNG.BitDepth(rawValue: config.int("bitDepth")) else {
            throw StageProblem(key: "bitDepth", "expected 8 or 16, found \(config.int("bitDepth"))")
        }
        bitDepth = depth
        range = PixelRange(rawValue: config.string("range"))!
        folder = try SinkSupport.folder(config.string("folder"), in: context.outputDirectory)
        let f = config.string("final")
        finalPath = f.hasPrefix("/") ? f : (context.outputDirectory as NSString).appendingPathComponent(f)
    }

    /// The file written for `step`.
    public func path(step: Int) -> String {
        (folder as NSString).appendingPathComponent(SinkSupport.stepName(step) + ".png")
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        var image = try Image(try e.tensor("input"))
        if range == .symmetric {
            for k in 0..<image.pixels.count { image.pixels[k] = range.toUnit(image.pixels[k]) }
        }
        last = image
        let path = self.path(step: e.step), bitDepth = self.bitDepth
        let copy = image
        try writer.submit { try PNG.write(copy, to: path, bitDepth: bitDepth) }
        return ["written": .effect]
    }

    public func finish() throws {
        if let image = last {
            let path = finalPath, bitDepth = self.bitDepth
            try writer.submit { try PNG.write(image, to: path, bitDepth: bitDepth) }
        }
        try writer.drain()
    }
}
