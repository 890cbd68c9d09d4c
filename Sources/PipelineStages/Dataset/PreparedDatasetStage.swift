import ImageIO
import PipelineGraph
import TensorRuntime

/// A prepared dataset (`ganflow dataset prepare`), memory-mapped: epochs copy bytes, never decode.
///
///     "data": { "type": "dataset.prepared", "path": "photos64.gfd" }
///
/// Outputs `images` `[batch, C, H, W]` in [-1, 1] as prepared (or as `size`, `fit` and `channels`
/// say, from the prepared images) and, when the dataset has them, `labels`.
public final class PreparedDatasetStage: DatasetBacked, @unchecked Sendable {
    public static let typeName = "dataset.prepared"
    public static let lane = StageLane.data
    public static let summary = "A prepared dataset (.gfd from 'ganflow dataset prepare'), memory-mapped; outputs 'images' in [-1, 1] and 'labels'."
    public static let configKeys: [ConfigKey] = [
        ConfigKey("path", .path, "The .gfd file written by 'ganflow dataset prepare'."),
        ConfigKey("labels", .bool, default: .bool(true), "Serve the prepared labels as output 'labels' (when the file has them)."),
    ] + DatasetCore.keys

    public let core: DatasetCore
    /// The mapped file.
    public let file: PreparedDataset

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let path = try DataPaths.resolve(config.string("path"), key: "path", context: context)
        do {
            file = try PreparedDataset(path: path)
        } catch let e as ImageIOError {
            throw StageProblem(key: "path", e.message)
        }
        let preprocessing = try ImagePreprocessing(config: config, fileChannels: file.shape[0])
        let source = try ByteRecordSource(storage: .mapped(file), count: file.count, recordShape: file.shape,
                                          labels: config.bool("labels") ? file.labels : nil, preprocessing: preprocessing)
        core = try DatasetCore(source: source, config: config, inputs: inputs, context: context)
    }
}
