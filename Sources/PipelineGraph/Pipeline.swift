/// A validated pipeline: stages built in dependency order, wires checked, ready to run.
public final class Pipeline: @unchecked Sendable {
    public struct Node: @unchecked Sendable {
        public let id: String
        public let stage: any Stage
        public let config: StageConfig
        /// Input port -> the output it is wired to.
        public let inputs: [String: Wire]
        /// Stages this one refers to by id (the model an optimizer updates).
        public let references: [String]
        public let every: Int
        public let from: Int
        public let until: Int?

        /// Whether the stage is active at `step` (its `every`, `from` and `until`).
        public func isActive(at step: Int) -> Bool {
            step >= from && (until.map { step <= $0 } ?? true) && step % every == 0
        }
    }

    public let document: PipelineDocument
    public let nodes: [String: Node]
    /// Stage ids in an order where every stage comes after the stages it reads from or refers to.
    public let order: [String]
    public let warnings: [PipelineError]
    public let context: BuildContext

    init(document: PipelineDocument, nodes: [String: Node], order: [String], warnings: [PipelineError], context: BuildContext) {
        self.document = document
        self.nodes = nodes
        self.order = order
        self.warnings = warnings
        self.context = context
    }

    /// Stages with an effect output that no phase drives: they run after the phases, when active
    /// (sinks, metrics).
    public var sideStages: [String] {
        let driven = Set(document.schedule.flatMap(\.run))
        return order.filter { id in
            !driven.contains(id) && nodes[id]!.stage.outputs.values.contains(.effect)
        }
    }

    /// The stage's output type at the built configuration.
    public func outputType(_ wire: Wire) -> PortType? { nodes[wire.stage]?.stage.outputs[wire.port] }
}
