import Dispatch
import TensorRuntime

/// How the stages of one evaluation are run: one after another, or concurrently on Dispatch.
/// Both give bit-identical results: a stage's values depend only on its inputs, its own state
/// and the evaluation index, and each stage runs once per evaluation.
public enum SchedulerKind: String, Sendable, CaseIterable {
    case serial
    case dispatch
}

/// An error inside a stage during a step, with the stage named.
public struct StageFailure: Error, CustomStringConvertible, Sendable {
    public var stageID: String
    public var typeName: String
    public var step: Int
    public var message: String
    public var description: String { "step \(step): stage '\(stageID)' (\(typeName)): \(message)" }
}

/// Evaluates the part of a pipeline that a set of requested outputs needs.
public final class Evaluator: @unchecked Sendable {
    public let pipeline: Pipeline
    public let kind: SchedulerKind
    private let queue = DispatchQueue(label: "ganflow.stages", attributes: .concurrent)
    /// One compute stage at a time: each uses every kernel thread.
    private let computeLane = DispatchSemaphore(value: 1)

    /// The run's progress that evaluations report (`Evaluation.progress`); the runner sets it
    /// before each step.
    public var progress: Double {
        get { progressValue.withLock { $0 } }
        set { progressValue.withLock { $0 = newValue } }
    }
    private let progressValue = Locked(0.0)

    public init(pipeline: Pipeline, kind: SchedulerKind) {
        self.pipeline = pipeline
        self.kind = kind
    }

    /// The outputs each stage must produce so that `targets` (stage -> outputs) can be computed.
    public func plan(_ targets: [String: Set<String>]) -> [String: Set<String>] { pipeline.plan(targets) }

    /// Runs one evaluation and returns every value computed, keyed by wire.
    ///
    /// `given` holds values an earlier evaluation of the step computed: a stage whose outputs
    /// needed here are all among them is not evaluated again (a schedule phase's `reuse`). Only
    /// the values computed here are returned.
    public func evaluate(_ targets: [String: Set<String>], step: Int, index: Int, mode: EvaluationMode,
                         given: [Wire: PortValue] = [:]) throws -> [Wire: PortValue] {
        let need = plan(targets, given: given)
        let ids = pipeline.order.filter { need[$0] != nil && !Self.isGiven($0, need[$0]!, given) }
        let results = Locked<[Wire: PortValue]>(given)

        @Sendable func run(_ id: String) throws {
            let node = pipeline.nodes[id]!
            let outputs = need[id]!
            var inputs: [String: PortValue] = [:]
            let snapshot = results.withLock { $0 }
            for port in Pipeline.ports(node, for: outputs) {
                guard let w = node.inputs[port] else { continue }
                inputs[port] = snapshot[w]
            }
            var evaluation = Evaluation(outputs: outputs, inputs: inputs, step: step, index: index, mode: mode,
                                        seed: pipeline.document.seed, stageID: id)
            distribute(&evaluation)
            // Every value this stage reads from is in the snapshot already.
            evaluation.recompute = { [self] changed in
                try recompute(id, outputs: outputs, changed: changed, base: snapshot, step: step, index: index, mode: mode)
            }
            let produced = try call(node, evaluation)
            results.withLock { r in
                for (port, value) in produced { r[Wire(stage: id, port: port)] = value }
            }
        }

        switch kind {
        case .serial:
            for id in ids { try run(id) }
        case .dispatch:
            try runConcurrently(ids, run)
        }
        // Effects are applied after every stage has read the values it needed.
        for id in ids {
            if let committing = pipeline.nodes[id]!.stage as? any CommittingStage {
                try Profiler.withLane(StageLane.compute.rawValue) {
                    try Profiler.measure("\(id) commit", category: .stage) { try committing.commit() }
                }
            }
        }
        return results.withLock { r in given.isEmpty ? r : r.filter { given[$0.key] == nil } }
    }

    /// The plan for `targets` where a stage whose needed outputs are all in `given` is a source.
    func plan(_ targets: [String: Set<String>], given: [Wire: PortValue]) -> [String: Set<String>] {
        given.isEmpty ? plan(targets) : pipeline.plan(targets) { Self.isGiven($0, $1, given) }
    }

    static func isGiven(_ id: String, _ outputs: Set<String>, _ given: [Wire: PortValue]) -> Bool {
        outputs.allSatisfy { given[Wire(stage: id, port: $0)] != nil }
    }

    /// Tells an evaluation the ranks it runs on and how far the run is.
    private func distribute(_ e: inout Evaluation) {
        e.communicator = pipeline.context.communicator
        e.progress = progress
    }

    /// Evaluates one stage in its mode's grad mode, naming the stage in any error.
    private func call(_ node: Pipeline.Node, _ evaluation: Evaluation) throws -> [String: PortValue] {
        do {
            // Grad mode and precision are per thread, and Dispatch may run this stage on any thread.
            return try Profiler.withLane(type(of: node.stage).lane.rawValue) {
                try Profiler.measure("\(node.id) (\(node.config.typeName))", category: .stage) {
                    try GradMode.with(enabled: evaluation.mode == .train) {
                        try ComputePrecision.with(pipeline.document.precision) { try node.stage.evaluate(evaluation) }
                    }
                }
            }
        } catch let p as StageProblem {
            throw StageFailure(stageID: node.id, typeName: node.config.typeName, step: evaluation.step, message: p.message)
        } catch let f as StageFailure {
            throw f
        } catch {
            throw StageFailure(stageID: node.id, typeName: node.config.typeName, step: evaluation.step, message: "\(error)")
        }
    }

    /// `Evaluation.recompute`: the inputs of stage `id` (for `outputs`) evaluated again after the
    /// parameters of the `changed` stages were modified in place.
    ///
    /// Walks the stages `id` reads from in order, re-evaluating only the outputs that read, directly
    /// or through other stages, from a changed stage; every other value comes from `base`.
    /// Committing stages keep their values, so no pending update is overwritten.
    func recompute(_ id: String, outputs: Set<String>, changed: Set<String>, base: [Wire: PortValue],
                   step: Int, index: Int, mode: EvaluationMode) throws -> [String: PortValue] {
        let need = plan([id: outputs])
        var values = base
        var dirty = Set<Wire>()
        for sid in pipeline.order where sid != id {
            guard let wanted = need[sid], let node = pipeline.nodes[sid], !(node.stage is any CommittingStage) else { continue }
            let redo = wanted.filter { o in
                changed.contains(sid) || Pipeline.ports(node, for: [o]).contains { node.inputs[$0].map(dirty.contains) ?? false }
            }
            if redo.isEmpty { continue }
            var inputs: [String: PortValue] = [:]
            for port in Pipeline.ports(node, for: redo) {
                if let w = node.inputs[port] { inputs[port] = values[w] }
            }
            var evaluation = Evaluation(outputs: redo, inputs: inputs, step: step, index: index, mode: mode,
                                        seed: pipeline.document.seed, stageID: sid)
            distribute(&evaluation)
            for (port, value) in try call(node, evaluation) {
                let w = Wire(stage: sid, port: port)
                values[w] = value
                dirty.insert(w)
            }
        }
        let node = pipeline.nodes[id]!
        var inputs: [String: PortValue] = [:]
        for port in Pipeline.ports(node, for: outputs) {
            if let w = node.inputs[port] { inputs[port] = values[w] }
        }
        return inputs
    }

    /// Runs `ids` on the concurrent queue, each as soon as the stages it reads from are done.
    private func runConcurrently(_ ids: [String], _ run: @escaping @Sendable (String) throws -> Void) throws {
        let idSet = Set(ids)
        var waiting: [String: Int] = [:]
        var dependents: [String: [String]] = [:]
        for id in ids {
            let node = pipeline.nodes[id]!
            let ups = Set(node.inputs.values.map(\.stage) + node.references).filter(idSet.contains)
            waiting[id] = ups.count
            for u in ups { dependents[u, default: []].append(id) }
        }
        struct Shared { var waiting: [String: Int]; var failure: Error?; var done = 0 }
        let shared = Locked(Shared(waiting: waiting, failure: nil))
        let group = DispatchGroup()
        let deps = dependents
        let queue = self.queue

        let lane = computeLane
        let pipeline = self.pipeline

        @Sendable func launch(_ id: String) {
            group.enter()
            queue.async {
                defer { group.leave() }
                let skip = shared.withLock { $0.failure != nil }
                if !skip {
                    let compute = type(of: pipeline.nodes[id]!.stage).lane == .compute
                    if compute { lane.wait() }
                    do { try run(id) } catch { shared.withLock { if $0.failure == nil { $0.failure = error } } }
                    if compute { lane.signal() }
                }
                let ready = shared.withLock { s -> [String] in
                    var r: [String] = []
                    for d in deps[id] ?? [] {
                        s.waiting[d]! -= 1
                        if s.waiting[d] == 0 { r.append(d) }
                    }
                    return r
                }
                for d in ready { launch(d) }
            }
        }
        for id in ids where waiting[id] == 0 { launch(id) }
        group.wait()
        if let failure = shared.withLock({ $0.failure }) { throw failure }
    }
}
