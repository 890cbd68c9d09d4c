import Foundation
import PipelineGraph
import PipelineStages
import Testing
import TensorRuntime

/// Stand-ins with the configuration keys of the data branch's `dataset.idx`, `dataset.images` and
/// `sink.grid`, used only while the standard registry lacks those types; random images of the
/// configured shape, no files read.
final class StandInIDX: EpochSource, @unchecked Sendable {
    static let typeName = "dataset.idx"
    static let summary = "Stand-in."
    static let configKeys = [
        ConfigKey("images", .path, "Images."), ConfigKey("labels", .path, default: .null, "Labels."),
        ConfigKey("batch", .int(min: 1), default: .number(64), "Batch."), ConfigKey("size", .int(min: 1), default: .null, "Size."),
        ConfigKey("fit", .string(choices: ["resize", "pad", "centerCrop", "randomCrop"]), default: .string("resize"), "Fit."),
        ConfigKey("channels", .int(min: 1), default: .null, "Channels."), ConfigKey("shuffle", .bool, default: .bool(true), "Shuffle."),
    ]
    let shape: [Int]
    let outputs: [String: PortType]
    var batchesPerEpoch: Int { 4 }
    init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        shape = [config.int("batch"), config.optionalInt("channels") ?? 1, config.optionalInt("size") ?? 28, config.optionalInt("size") ?? 28]
        outputs = ["images": .tensor(shape)]
    }
    func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        var rng = e.random()
        return ["images": .tensor(Tensor(randomUniform: shape, low: -1, high: 1, using: &rng))]
    }
}

final class StandInImages: Stage, @unchecked Sendable {
    static let typeName = "dataset.images"
    static let summary = "Stand-in."
    static let configKeys = [
        ConfigKey("path", .path, "Folder."), ConfigKey("batch", .int(min: 1), default: .number(64), "Batch."),
        ConfigKey("size", .int(min: 1), default: .null, "Size."), ConfigKey("channels", .int(min: 1), default: .null, "Channels."),
    ]
    let shape: [Int]
    let outputs: [String: PortType]
    init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        shape = [config.int("batch"), config.optionalInt("channels") ?? 3, config.optionalInt("size") ?? 64, config.optionalInt("size") ?? 64]
        outputs = ["images": .tensor(shape)]
    }
    func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        var rng = e.random()
        return ["images": .tensor(Tensor(randomUniform: shape, low: -1, high: 1, using: &rng))]
    }
}

final class StandInGrid: Stage, @unchecked Sendable {
    static let typeName = "sink.grid"
    static let summary = "Stand-in."
    static let configKeys = [ConfigKey("input", .wire, "Images.")]
    let outputs: [String: PortType] = ["written": .effect]
    init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {}
    func evaluate(_ e: Evaluation) throws -> [String: PortValue] { ["written": .effect] }
}

@Suite struct PipelineFileTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let files = ["mlp-gan-fashion", "dcgan28-notebook", "dcgan-fashion", "dcgan64-rgb", "wgan-gp-fashion",
                        "hinge-sn-fashion", "lsgan-fashion", "r1-fashion"]

    /// The standard registry, with stand-ins for the data stages it does not have yet.
    static let registry: StageRegistry = {
        var r = StageRegistry.standard
        if r["dataset.idx"] == nil { r.register(StandInIDX.self) }
        if r["dataset.images"] == nil { r.register(StandInImages.self) }
        if r["sink.grid"] == nil { r.register(StandInGrid.self) }
        return r
    }()

    static func path(_ name: String) -> String { "\(root)/pipelines/\(name).json" }

    @Test func everyPipelineIsListed() throws {
        let found = try FileManager.default.contentsOfDirectory(atPath: "\(Self.root)/pipelines").filter { $0.hasSuffix(".json") }
        #expect(Set(found) == Set(Self.files.map { $0 + ".json" }))
    }

    @Test(arguments: files)
    func validates(_ name: String) throws {
        let doc = try PipelineDocument.load(file: Self.path(name))
        let p = try PipelineBuilder(registry: Self.registry).build(doc, outputDirectory: NSTemporaryDirectory())
        #expect(p.warnings.isEmpty, "\(p.warnings)")
        #expect(doc.name == name)
    }

    /// Two steps on the fixtures (the IDX fixture of 256 test images, the photo patches), small batches.
    @Test(arguments: files)
    func runsOnFixtures(_ name: String) throws {
        var overrides = ["data.batch=8", "z.batch=8"]
        let text = try String(contentsOfFile: Self.path(name), encoding: .utf8)
        if text.contains("dataset.idx") { overrides.append("data.images=\(Self.root)/Fixtures/idx/t10k-256-images-idx3-ubyte.gz") }
        let doc = try PipelineDocument.load(file: Self.path(name), overrides: overrides)
        let dir = temporaryDirectory("pipeline-\(name)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try PipelineBuilder(registry: Self.registry).build(doc, outputDirectory: dir)
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        options.stepsOverride = 2
        let summary = try Runner(pipeline: p, options: options).run()
        #expect(summary.lastStep == 2)
        #expect(summary.finalScalars["loss.discriminator"]?.isFinite == true)
        #expect(summary.finalScalars["loss.generator"]?.isFinite == true)
        #expect(Checkpoint.list(in: dir).count == 1)
        // What users do next: sample from the run.
        let (_, g) = try TrainedRun(dir).generator(nil, registry: Self.registry)
        #expect(try g.samples(count: 3, seed: 1).shape.first == 3)
    }
}
