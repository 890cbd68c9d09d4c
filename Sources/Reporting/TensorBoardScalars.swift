import PipelineGraph

/// Writes every scalar a run logs (losses, metrics, learning rates, ADA's p, ...) to a TensorBoard
/// event file in the run directory, as the run goes.
///
///     ganflow run pipelines/dcgan-fashion.json      # then: tensorboard --logdir runs
public final class TensorBoardScalars: RunObserver {
    let writer: EventFileWriter

    public init(runDirectory: String) throws {
        writer = try EventFileWriter(directory: runDirectory, suffix: "scalars")
    }

    public var path: String { writer.path }

    public func runDidLog(step: Int, seconds: Double, scalars: [(String, Double)]) throws {
        try writer.scalars(scalars, step: step)
    }

    public func runDidFinish() throws { try writer.close() }
}
