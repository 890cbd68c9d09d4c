import Foundation
import ImageIO
import PipelineGraph
import TensorRuntime

/// Writes one PNG per `every` steps holding a grid of every scale of a pyramid, side by side,
/// coarsest on the left (the MSG-GAN paper's figures): `samples/step-00000250.png`.
///
///     "grids": { "type": "sink.pyramid", "input": "G.pyramid", "every": 250, "nrow": 4 }
///
/// With `upscale` (the default) every scale is enlarged (nearest) to the finest one's size, so
/// the grids line up pixel for pixel.
public final class PyramidGridSinkStage: Stage, @unchecked Sendable {
    public static let typeName = "sink.pyramid"
    public static let summary = "A PNG of one grid per scale of a pyramid, side by side, as <folder>/step-NNNNNNNN.png."
    public static let lane = StageLane.output
    public static let configKeys: [ConfigKey] = [
        ConfigKey("input", .wire, "A pyramid of images in [-1, 1] (C of 1, 3 or 4), coarsest first."),
        ConfigKey("nrow", .int(min: 1), default: .number(4), "Images per row of each grid."),
        ConfigKey("count", .int(min: 1), default: .number(16), "Images of each scale shown (at most the batch)."),
        ConfigKey("padding", .int(min: 0), default: .number(2), "Pixels between and around the images."),
        ConfigKey("gap", .int(min: 0), default: .number(8), "Pixels between two scales' grids."),
        ConfigKey("upscale", .bool, default: .bool(true), "Enlarge every scale to the finest one's size."),
        ConfigKey("folder", .path, default: .string("samples"), "Folder for the PNGs, under the run's output directory."),
        ConfigKey("pending", .int(min: 1, max: 64), default: .number(2), "Files that may wait to be written before the run waits for the disk."),
    ]

    public let outputs: [String: PortType] = ["written": .effect]
    let folder: String
    let nrow: Int, count: Int, padding: Int, gap: Int, upscale: Bool
    let writer: BackgroundWriter

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        guard case .pyramid(let scales)? = inputs["input"], !scales.isEmpty else {
            throw StageProblem(key: "input", "expected a pyramid of images, found \(inputs["input"].map { "\($0)" } ?? "nothing")")
        }
        for s in scales { try SinkSupport.checkImages(.tensor(s), grid: true) }
        nrow = config.int("nrow")
        count = config.int("count")
        padding = config.int("padding")
        gap = config.int("gap")
        upscale = config.bool("upscale")
        folder = try SinkSupport.folder(config.string("folder"), in: context.outputDirectory)
        writer = BackgroundWriter(label: "ganflow.sink.\(config.stageID)", limit: config.int("pending"))
    }

    public func path(step: Int) -> String {
        (folder as NSString).appendingPathComponent(SinkSupport.stepName(step) + ".png")
    }

    /// The grids of every scale, left to right, top-aligned, on black.
    static func compose(_ scales: [Tensor], nrow: Int, padding: Int, gap: Int) throws -> Image {
        let grids = try scales.map { try SampleGrid.compose($0, nrow: nrow, padding: padding) }
        let width = grids.map(\.width).reduce(0, +) + gap * (grids.count - 1), height = grids.map(\.height).max()!
        let channels = grids[0].channels
        var out = Image(width: width, height: height, channels: channels, repeating: 0)
        var left = 0
        for g in grids {
            for c in 0..<channels {
                for y in 0..<g.height {
                    let from = (c * g.height + y) * g.width, to = (c * height + y) * width + left
                    for x in 0..<g.width { out.pixels[to + x] = g.pixels[from + x] }
                }
            }
            left += g.width + gap
        }
        return out
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let levels = try e.pyramid("input")
        let finest = levels.last!.shape[2]
        let shown = try levels.map { level -> Tensor in
            var x = level.shape[0] > count ? try level.sliced(axis: 0, 0..<count) : level
            if upscale && x.shape[2] < finest && finest % x.shape[2] == 0 { x = try x.upsampleNearest(factor: finest / x.shape[2]) }
            return x.copy()
        }
        let path = self.path(step: e.step)
        let (nrow, padding, gap) = (self.nrow, self.padding, self.gap)
        try writer.submit {
            try PNG.write(try PyramidGridSinkStage.compose(shown, nrow: nrow, padding: padding, gap: gap), to: path)
        }
        return ["written": .effect]
    }

    public func finish() throws { try writer.drain() }
}
