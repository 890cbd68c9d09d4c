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

    /// The outputs each stage must produce so that `targets` (stage -> outputs) can be computed.
    /// A stage in `reusing` is a source here: its values are already known, so the stages it reads
    /// from are not asked for anything on its behalf.
    public func plan(_ targets: [String: Set<String>], reusing: Set<String> = []) -> [String: Set<String>] {
        plan(targets) { id, _ in reusing.contains(id) }
    }

    /// The plan for `targets` where `isSource(stage, outputs)` tells whether a stage's values,
    /// `outputs` being all that its consumers ask of it, are known already.
    func plan(_ targets: [String: Set<String>], isSource: (String, Set<String>) -> Bool) -> [String: Set<String>] {
        var need = targets
        // Walk stages from last to first: a stage's requests are final once its consumers are seen.
        for id in order.reversed() {
            guard let outputs = need[id], let node = nodes[id], !isSource(id, outputs) else { continue }
            for port in Self.ports(node, for: outputs) {
                guard let w = node.inputs[port] else { continue }
                need[w.stage, default: []].insert(w.port)
            }
        }
        return need
    }

    /// The input ports a stage reads to produce `outputs`.
    static func ports(_ node: Node, for outputs: some Sequence<String>) -> Set<String> {
        var ports = Set<String>()
        for o in outputs {
            if let needed = node.stage.inputsNeeded(for: o) { ports.formUnion(needed) } else { ports.formUnion(node.inputs.keys) }
        }
        return ports
    }

    /// `ids` and every stage they read from, directly or through others.
    public func upstream(of ids: some Sequence<String>) -> Set<String> {
        var seen = Set<String>()
        var todo = Array(ids)
        while let id = todo.popLast() {
            guard seen.insert(id).inserted, let node = nodes[id] else { continue }
            todo += node.inputs.values.map(\.stage)
        }
        return seen
    }

    /// The targets of a phase: every output of each stage it drives.
    public func targets(of phase: PipelineDocument.Phase, activeAt step: Int? = nil) -> [String: Set<String>] {
        let run = step.map { s in phase.run.filter { nodes[$0]!.isActive(at: s) } } ?? phase.run
        return Dictionary(uniqueKeysWithValues: run.map { ($0, allOutputs($0)) })
    }

    /// Every output port of a stage.
    public func allOutputs(_ id: String) -> Set<String> { Set(nodes[id]!.stage.outputs.keys) }

    /// The stage's output type at the built configuration.
    public func outputType(_ wire: Wire) -> PortType? { nodes[wire.stage]?.stage.outputs[wire.port] }
}
