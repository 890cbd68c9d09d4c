// What a stage may be besides a `Stage`, for the parts of the core that treat it specially. The
// model stages' contracts (ModelStage, GeneratorStage, CriticStage, ...) are in
// PipelineStages/Model/ModelStageProtocols.swift; `EpochSource` is beside the Runner that reads it.

/// A stage whose action must wait until every stage of the same evaluation has finished, such as
/// an optimizer: gradients for G and D are both taken before either network's weights change.
public protocol CommittingStage: Stage {
    /// Applies the effect prepared by the last `evaluate`, in schedule order.
    func commit() throws
}

/// A stage whose integer outputs take several values over a run, such as the resolution of a
/// progressive-growing schedule. Validation checks the graph's shapes for each scenario before
/// the first step.
public protocol ScenarioSource: Stage {
    /// Each scenario gives a value to each integer output port, with a label for messages
    /// ("resolution 16").
    var scenarios: [(label: String, values: [String: Int])] { get }
}
