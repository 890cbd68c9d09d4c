import Dispatch
import Foundation
import GANFlowTestSupport
import PipelineGraph
@testable import PipelineStages
import Synchronization
import TensorRuntime
import Testing

/// A sink whose writes wait until the test opens `gate`: a disk slower than any training loop.
final class GatedSinkStage: Stage, @unchecked Sendable {
    static let typeName = "test.gatedsink"
    static let summary = "Queues one write per step; each write waits for the test to let it through."
    static let configKeys = [
        ConfigKey("input", .wire, "Anything."),
        ConfigKey("pending", .int(min: 1, max: 64), default: .number(2), "Writes that may wait."),
    ]
    let outputs: [String: PortType] = ["done": .effect]
    let writer: BackgroundWriter
    let gate = DispatchSemaphore(value: 0)

    init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        writer = BackgroundWriter(label: "test.gatedsink", limit: config.int("pending"))
    }

    func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let gate = self.gate
        try writer.submit { gate.wait() }
        return ["done": .effect]
    }

    func finish() throws { try writer.drain() }
}

/// Counts the steps the loop has finished.
final class StepCounter: RunObserver {
    let steps = Atomic<Int>(0)
    func runDidLog(step: Int, seconds: Double, scalars: [(String, Double)]) throws { steps.add(1, ordering: .relaxed) }
    func runDidFinish() throws {}
}

@Suite struct BackpressureTests {
    /// A sink slower than the loop holds the loop back at its queue's limit instead of queueing
    /// more and more images: with no write able to finish, the loop stops after exactly `pending`
    /// steps, blocked in the sink, and the queue never holds more than `pending`.
    @Test func aSlowSinkHoldsTheLoopBackAtItsQueueLimit() throws {
        var registry = testRegistry
        registry.register(GatedSinkStage.self)
        let steps = 12, pending = 3
        let text = """
        { "name": "slow-sink", "seed": 1, "steps": \(steps), "checkpoint": { "every": 1000 },
          "stages": { "z": { "type": "noise.normal", "dim": 4, "batch": 2 },
                      "use": { "type": "test.consume", "input": "z.samples" },
                      "slow": { "type": "test.gatedsink", "input": "z.samples", "pending": \(pending) } },
          "schedule": [ { "run": "use" } ] }
        """
        let directory = temporaryDirectory("backpressure")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pipeline = try PipelineBuilder(registry: registry)
            .build(try PipelineDocument.parse(text, file: "slow-sink.json"), outputDirectory: directory)
        let sink = try #require(pipeline.nodes["slow"]?.stage as? GatedSinkStage)
        let counter = StepCounter()
        var options = Runner.Options(runDirectory: directory)
        options.quiet = true
        options.observers = [counter]
        let runner = Runner(pipeline: pipeline, options: options)

        let finished = DispatchSemaphore(value: 0)
        let outcome = Locked<Result<RunSummary, any Error>?>(nil)
        DispatchQueue.global().async {
            let result = Result { try runner.run() }
            outcome.withLock { $0 = result }
            finished.signal()
        }

        // Wait (without asserting anything about time) until the loop is stuck in the sink with
        // the queue full; the deadline only keeps a broken build from hanging the suite.
        let deadline = Date().addingTimeInterval(120)
        while !(sink.writer.waitingSubmitters == 1 && sink.writer.pending == pending) && Date() < deadline {
            usleep(2_000)
        }
        #expect(sink.writer.waitingSubmitters == 1, "the loop should be waiting for the sink")
        #expect(sink.writer.pending == pending)
        // The step whose write is refused has not been logged; the ones before it have.
        #expect(counter.steps.load(ordering: .relaxed) == pending)
        #expect(sink.writer.completed == 0)

        for _ in 0..<steps { sink.gate.signal() }
        finished.wait()
        let summary = try #require(try outcome.withLock { $0 }?.get())
        #expect(summary.lastStep == steps)
        #expect(sink.writer.completed == steps)
        #expect(sink.writer.highWater == pending)
    }

    /// The data side's queue: a loader decodes at most its `prefetch` depth of batches beyond those
    /// the loop has taken, then waits, however long the loop takes to come back for more.
    @Test func aLoaderDecodesAtMostItsPrefetchDepthAhead() throws {
        let depth = 3
        let produced = Locked(0), made = DispatchSemaphore(value: 0)
        let next: @Sendable (LoaderPosition) -> LoaderPosition = { LoaderPosition(epoch: $0.epoch, index: $0.index + 1) }
        let prefetcher = Prefetcher(label: "test.prefetch", depth: depth, advance: next) { p in
            produced.withLock { $0 += 1 }
            made.signal()
            return .success(DataBatch(images: Tensor(repeating: Float(p.index), shape: [1]), labels: nil))
        }
        var position = LoaderPosition(epoch: 0, index: 0)
        for taken in [1, 3] {
            while position.index < taken {
                #expect(try prefetcher.take(position).images.scalars == [Float(position.index)])
                position = next(position)
            }
            // The batches taken and a full queue behind them are made (the deadline only keeps a
            // broken build from hanging the suite) ...
            while produced.withLock({ $0 }) < taken + depth {
                #expect(made.wait(timeout: .now() + 60) == .success, "\(produced.withLock { $0 }) batches made")
            }
            // ... and no more while nothing is taken.
            usleep(200_000)
            #expect(produced.withLock { $0 } == taken + depth)
        }
        prefetcher.stop()
    }
}
