import Foundation
import ImageIO
import PipelineGraph
import TensorRuntime

/// Writes a class grid of a conditional generator's samples every `every` steps: one row per
/// class, in class order, `classgrid/step-00000250.png`.
///
///     "classgrid": { "type": "sink.classgrid", "images": "G.images", "labels": "y.labels", "every": 250 }
///
/// In sample evaluations the latents are fixed and `noise.classes` asks for every class in turn,
/// so row k shows the first `columns` images generated for class k, from the same latents at every
/// step. (`ganflow sample RUN --classes 0,1,... --grid` draws a grid whose every column shares one
/// latent.) Rows of classes with fewer images are left black. A sample evaluation makes the whole
/// batch even in a data-parallel run, so the columns are counted from the images it is given, not
/// from a rank's share of the training batch.
public final class ClassGridSinkStage: Stage, @unchecked Sendable {
    public static let typeName = "sink.classgrid"
    public static let summary = "A PNG grid of a conditional generator's batch with one row per class, as <folder>/step-NNNNNNNN.png."
    public static let lane = StageLane.output
    public static let configKeys: [ConfigKey] = [
        ConfigKey("images", .wire, "Images [N, C, H, W] in [-1, 1]."),
        ConfigKey("labels", .wire, "The class of each image [N] (the generator's labels)."),
        ConfigKey("classes", .int(min: 1, max: 1 << 16), "Rows of the grid: classes 0 to classes - 1."),
        ConfigKey("columns", .int(min: 1, max: 1024), default: .null, "Images per class (null: the whole batch divided by the classes)."),
        ConfigKey("folder", .path, default: .string("classgrid"), "Folder for the grids, under the run's output directory."),
    ]

    public let outputs: [String: PortType] = ["written": .effect]
    let folder: String
    let classes: Int
    /// Images per class; nil: the sample batch divided by the classes.
    let columns: Int?
    let writer: BackgroundWriter

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        try SinkSupport.checkImages(inputs["images"], grid: true)
        let n = inputs["images"]!.shape![0]
        guard inputs["labels"]?.shape == [n] else {
            throw StageProblem(key: "labels", "expected the classes [\(n)] of the \(n) images, found \(inputs["labels"].map { "\($0)" } ?? "nothing")")
        }
        classes = config.int("classes")
        if let source = Wire(parsing: config.string("labels")).flatMap({ context.stage($0.stage) }) as? any ClassLabelSource,
           let k = source.classCount, k != classes {
            throw StageProblem(key: "labels", "'\(config.string("labels"))' gives labels of \(k) classes, but 'classes' is \(classes)")
        }
        columns = config.optionalInt("columns")
        folder = try SinkSupport.folder(config.string("folder"), in: context.outputDirectory)
        writer = BackgroundWriter(label: "ganflow.sink.\(config.stageID)", limit: 2)
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let images = try e.tensor("images")
        let columns = self.columns ?? max(1, images.shape[0] / classes)
        let grid = try Self.arrange(images, labels: try e.tensor("labels"), classes: classes, columns: columns)
        let path = (folder as NSString).appendingPathComponent(SinkSupport.stepName(e.step) + ".png")
        try writer.submit { try SampleGrid.write(grid, to: path, nrow: columns) }
        return ["written": .effect]
    }

    /// The images in class rows: [classes * columns, C, H, W], row k holding the first `columns`
    /// images of class k in batch order and black (-1) where there are fewer.
    static func arrange(_ images: Tensor, labels: Tensor, classes: Int, columns: Int) throws -> Tensor {
        let item = Array(images.shape.dropFirst()), size = item.reduce(1, *)
        let source = images.scalars
        var out = [Float](repeating: -1, count: classes * columns * size)
        var filled = [Int](repeating: 0, count: classes)
        for (i, v) in labels.scalars.enumerated() {
            let c = Int(v)
            guard c >= 0, c < classes, filled[c] < columns else { continue }
            let slot = c * columns + filled[c]
            out.replaceSubrange((slot * size)..<((slot + 1) * size), with: source[(i * size)..<((i + 1) * size)])
            filled[c] += 1
        }
        return try Tensor(shape: [classes * columns] + item, scalars: out)
    }

    public func finish() throws { try writer.drain() }
}
