import PipelineGraph
import TensorRuntime

/// Model weights out of a run's checkpoint.
public enum ModelStateDict {
    /// The `state_dict` of the model stage `id` in a checkpoint (its moving average with `ema`),
    /// read without building the pipeline.
    public static func fromCheckpoint(_ archive: SafeTensorsArchive, stage id: String, ema: Bool) throws -> SafeTensorsArchive {
        let state = Checkpoint.stageState(id, in: archive)
        guard !state.tensors.isEmpty else { throw StageProblem("the checkpoint has no tensors of stage '\(id)'") }
        return try NetworkCore.stateDict(from: state, ema: ema)
    }
}
