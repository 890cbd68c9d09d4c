import Foundation
import ImageIO
import PipelineGraph
import Reporting
import TensorRuntime

/// Writes image grids to a TensorBoard event file in the run directory (its IMAGES tab), every
/// `every` steps and at the end, one tag per input.
///
///     "tb": { "type": "sink.tensorboard", "images": { "samples": "G.images" }, "every": 250 }
///
/// Scalars need no stage: `ganflow run` writes every logged scalar to an event file of its own
/// in the same folder, which TensorBoard shows as one run.
public final class TensorBoardSinkStage: Stage, @unchecked Sendable {
    public static let typeName = "sink.tensorboard"
    public static let summary = "Image grids of its inputs in a TensorBoard event file (tag = input name)."
    public static let lane = StageLane.output
    public static let configKeys: [ConfigKey] = [
        ConfigKey("images", .wireMap, "Image batches [N, C, H, W] in [-1, 1] (C of 1, 3 or 4), each under its name as the tag."),
        ConfigKey("nrow", .int(min: 1), default: .number(8), "Images per row of each grid."),
    ]

    public let outputs: [String: PortType] = ["written": .effect]
    let nrow: Int
    let directory: String
    let suffix: String
    let scratch: String
    /// Opened at the first write, so that building the pipeline (validation, sampling) leaves no file.
    private let writer = Locked<EventFileWriter?>(nil)

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        guard !inputs.isEmpty else { throw StageProblem(key: "images", "give at least one image input") }
        for (name, type) in inputs {
            guard let s = type.shape, s.count == 4, [1, 3, 4].contains(s[1]) else {
                throw StageProblem(key: name, "expected images [N, C, H, W] with C of 1, 3 or 4, found \(type)")
            }
        }
        nrow = config.int("nrow")
        directory = context.outputDirectory
        suffix = "images." + config.stageID
        scratch = (NSTemporaryDirectory() as NSString).appendingPathComponent("ganflow-tb-\(UUID().uuidString).png")
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let writer = try self.writer.withLock { w in
            if let w { return w }
            let opened = try EventFileWriter(directory: directory, suffix: suffix)
            w = opened
            return opened
        }
        for name in e.inputs.keys.sorted() {
            let grid = try SampleGrid.compose(try e.tensor(name), nrow: nrow)
            try writer.image(tag: name, png: try Self.encode(grid, scratch: scratch), width: grid.width, height: grid.height,
                             channels: grid.channels, step: e.step)
        }
        return ["written": .effect]
    }

    /// The PNG bytes of `image` (libpng writes files; a scratch file stands in for memory).
    static func encode(_ image: Image, scratch: String) throws -> [UInt8] {
        try PNG.write(image, to: scratch)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        return Array(try Data(contentsOf: URL(fileURLWithPath: scratch)))
    }

    public func finish() throws { try writer.withLock { try $0?.close() } }
}
