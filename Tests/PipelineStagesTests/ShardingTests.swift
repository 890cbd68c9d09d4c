import Foundation
import GANFlowTestSupport
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

/// A data-parallel rank serves its rows of every global batch: the shards of all ranks together
/// are what one process serves.
@Suite struct ShardingTests {
    static let file = fixture("pipelines/distributed/dcgan32-sync.json")

    static func build(_ comm: any Communicator) throws -> Pipeline {
        let doc = try PipelineDocument.load(file: file)
        return try PipelineBuilder(registry: .standard).build(doc, outputDirectory: NSTemporaryDirectory() + "unused", communicator: comm)
    }

    /// The `port` output of stage `id` in a training evaluation, as the rank `pipeline` was built
    /// for sees it.
    static func serve(_ pipeline: Pipeline, _ id: String, _ port: String, index: Int) throws -> Tensor {
        var e = Evaluation(outputs: [port], inputs: [:], step: 1, index: index, mode: .train,
                           seed: pipeline.document.seed, stageID: id)
        e.communicator = pipeline.context.communicator
        return try pipeline.nodes[id]!.stage.evaluate(e)[port]!.tensor!
    }

    @Test func theRanksShardsOfDataAndNoiseMakeTheSingleProcessBatch() throws {
        let single = try Self.build(SingleProcessCommunicator())
        let group = ThreadedCommunicatorGroup(size: 2)
        let ranks = try group.ranks.map { try Self.build($0) }
        for (id, port) in [("data", "images"), ("z", "samples")] {
            // Two successive batches: the second comes from the same shuffled epoch.
            for index in [0, 2] {
                let whole = try Self.serve(single, id, port, index: index)
                #expect(whole.shape[0] == 16)
                let shards = try (0..<2).map { try Self.serve(ranks[$0], id, port, index: index) }
                #expect(shards.map { $0.shape[0] } == [8, 8], "\(id)")
                #expect(shards[0].scalars + shards[1].scalars == whole.scalars, "\(id) at index \(index)")
                #expect(shards[0].scalars != shards[1].scalars, "\(id)")
            }
        }
        // Declared types are the shard's, so shapes are checked per rank before the first step.
        #expect(ranks[0].nodes["G"]!.stage.outputs["images"] == .tensor([8, 1, 32, 32]))
    }

    @Test func aShortLastBatchCannotBeSplitOverRanks() throws {
        let group = ThreadedCommunicatorGroup(size: 2)
        let doc = try PipelineDocument.load(file: Self.file, overrides: ["data.batch=12", "z.batch=12", "data.dropLast=false"])
        #expect {
            try PipelineBuilder(registry: .standard).build(doc, outputDirectory: NSTemporaryDirectory() + "unused", communicator: group.ranks[1])
        } throws: { error in
            "\(error)" == Self.file + ": $.stages.data.dropLast: the last batch of 4 images cannot be split evenly over 2 ranks; set 'dropLast' to true"
        }
    }
}
