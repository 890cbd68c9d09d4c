import Foundation
import ImageIO
import PipelineGraph
import TensorRuntime

/// Writes a PNG grid of an image batch every `every` steps: `samples/step-00000250.png`.
///
///     "grid": { "type": "sink.grid", "input": "G.images", "every": 250, "nrow": 8 }
///
/// Sinks run in sample evaluations, where noise stages give the same latent batch every time, so
/// successive grids show the same samples as training goes. Writing happens on a background
/// queue with at most `pending` grids waiting; the run's end waits for them.
public final class GridSinkStage: Stage, @unchecked Sendable {
    public static let typeName = "sink.grid"
    public static let summary = "A PNG grid of an image batch every 'every' steps, as <folder>/step-NNNNNNNN.png."
    public static let lane = StageLane.output
    public static let configKeys: [ConfigKey] = [
        ConfigKey("input", .wire, "Images [N, C, H, W] in [-1, 1] (C of 1, 3 or 4)."),
        ConfigKey("nrow", .int(min: 1), default: .number(8), "Images per row of the grid."),
        ConfigKey("padding", .int(min: 0), default: .number(2), "Pixels between and around the images."),
        ConfigKey("padValue", .number(min: 0, max: 1), default: .number(0), "Gray level of the padding (0 black, 1 white)."),
        ConfigKey("bitDepth", .int(min: 8, max: 16), default: .number(8), "8 or 16 bits per sample."),
        ConfigKey("folder", .path, default: .string("samples"), "Folder for the grids, under the run's output directory."),
        ConfigKey("pending", .int(min: 1, max: 64), default: .number(2), "Grids that may wait to be written before the run waits for the disk."),
        ConfigKey("upscale", .int(min: 1, max: 4096), default: .null, "Enlarge smaller images (nearest) to this side first: a growing generator's grids at its final size."),
        ConfigKey("tags", .wireMap, default: .null, "Integers or scalars written into the file name: {\"resolution\": \"grow.resolution\"} gives step-NNNNNNNN-resolution16.png."),
    ]

    public let outputs: [String: PortType] = ["written": .effect]
    let folder: String
    let nrow: Int, padding: Int, padValue: Float
    let bitDepth: PNG.BitDepth
    let writer: BackgroundWriter
    let upscale: Int?
    let tags: [String]

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        try SinkSupport.checkImages(inputs["input"], grid: true)
        guard let depth = PNG.BitDepth(rawValue: config.int("bitDepth")) else {
            throw StageProblem(key: "bitDepth", "expected 8 or 16, found \(config.int("bitDepth"))")
        }
        bitDepth = depth
        nrow = config.int("nrow")
        padding = config.int("padding")
        padValue = config.float("padValue")
        folder = try SinkSupport.folder(config.string("folder"), in: context.outputDirectory)
        writer = BackgroundWriter(label: "ganflow.sink.\(config.stageID)", limit: config.int("pending"))
        upscale = config.optionalInt("upscale")
        tags = (config.raw("tags").objectEntries ?? []).map(\.0)
        for tag in tags {
            guard tag != "input" else { throw StageProblem(key: "tags", "a tag cannot be named 'input'") }
            guard let t = inputs[tag], t == .integer || t == .scalar else {
                throw StageProblem(key: tag, "tag '\(tag)' must be an integer or a scalar, found \(inputs[tag].map { "\($0)" } ?? "nothing")")
            }
        }
        _ = try outputTypes(for: inputs)
    }

    public func outputTypes(for inputs: [String: PortType]) throws -> [String: PortType] {
        if let upscale, let side = inputs["input"]?.shape?[2], upscale % side != 0 {
            throw StageProblem(key: "upscale", "cannot enlarge \(side)x\(side) images to \(upscale)x\(upscale) by a whole factor")
        }
        return outputs
    }

    /// The file written for `step` with tag values (name, value) in the name.
    func path(step: Int, tags: [(String, PortValue)]) -> String {
        var name = SinkSupport.stepName(step)
        for (tag, value) in tags {
            switch value {
            case .integer(let n): name += "-\(tag)\(n)"
            default: name += "-\(tag)" + String(format: "%.3f", value.number ?? .nan)
            }
        }
        return (folder as NSString).appendingPathComponent(name + ".png")
    }

    /// The file written for `step`.
    public func path(step: Int) -> String {
        (folder as NSString).appendingPathComponent(SinkSupport.stepName(step) + ".png")
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        // A detached copy: the write runs later, on another thread.
        var batch = try e.tensor("input").copy()
        if let upscale, batch.shape[2] < upscale {
            batch = try batch.upsampleNearest(factor: upscale / batch.shape[2])
        }
        let images = batch
        let path = self.path(step: e.step, tags: tags.compactMap { t in e.inputs[t].map { (t, $0) } })
        let (nrow, padding, padValue, bitDepth) = (self.nrow, self.padding, self.padValue, self.bitDepth)
        try writer.submit {
            try SampleGrid.write(images, to: path, nrow: nrow, padding: padding, padValue: padValue, bitDepth: bitDepth)
        }
        return ["written": .effect]
    }

    public func finish() throws { try writer.drain() }
}
