import Foundation
import TensorRuntime

/// Validates a pipeline document against a registry and builds its stages.
///
/// Every problem is collected before anything runs: unknown types and keys, ill-typed values,
/// wires to missing stages or ports, cycles, port kind and shape mismatches.
public struct PipelineBuilder {
    public let registry: StageRegistry

    public init(registry: StageRegistry) { self.registry = registry }

    /// A stage whose type and keys are valid, not built yet.
    struct Pending {
        var type: any Stage.Type
        var config: StageConfig
        var inputs: [String: Wire]
        var refs: [String]
    }

    /// Builds `doc`. With a `communicator` of several ranks, data stages are built to serve this
    /// rank's shard of every batch.
    ///
    /// One pass after another, each returning its problems; a stage that fails one pass is left
    /// out of the next, so each problem is reported once, where it starts.
    public func build(_ doc: PipelineDocument, outputDirectory: String,
                      communicator: any Communicator = SingleProcessCommunicator()) throws -> Pipeline {
        let (pending, keyProblems) = checkTypesAndKeys(doc)
        var problems = keyProblems
        let (unresolved, referenceProblems) = checkReferences(doc, pending)
        problems += referenceProblems
        let (order, cycle) = dependencyOrder(doc, pending)
        if let cycle { throw PipelineErrors(problems + [cycle]) }

        let context = BuildContext(pipelineName: doc.name, seed: doc.seed, pipelineFile: doc.file, outputDirectory: outputDirectory,
                                   communicator: communicator, distributed: doc.distributed)
        var failed = unresolved.union(doc.stageOrder.filter { pending[$0] == nil })
        let (nodes, buildProblems) = buildStages(doc, pending, order: order, failed: &failed, context: context)
        problems += buildProblems
        problems += checkScheduleTargets(doc, nodes)
        if !problems.isEmpty { throw PipelineErrors(problems) }

        problems += checkScenarios(nodes: nodes, order: order, doc: doc)
        if !problems.isEmpty { throw PipelineErrors(problems) }
        let pipeline = Pipeline(document: doc, nodes: nodes, order: order, warnings: warnings(doc, nodes), context: context)
        problems += checkReuse(pipeline)
        if !problems.isEmpty { throw PipelineErrors(problems) }
        return pipeline
    }

    /// Pass 7, on the built pipeline: a phase's `reuse`. Each stage is one this phase reads, not
    /// one that acts, and an earlier phase of the step gives it (with the outputs read here). No
    /// stage that acts in between (from that phase on, and in this one when it repeats) changes it
    /// or a stage it reads from: an optimizer changes the stage it updates, and a stage that acts
    /// changes itself.
    func checkReuse(_ pipeline: Pipeline) -> [PipelineError] {
        let doc = pipeline.document
        var problems: [PipelineError] = []
        // What each phase evaluates or reuses, and what it reads at all.
        let plans = doc.schedule.map { pipeline.plan(pipeline.targets(of: $0), reusing: pipeline.upstream(of: $0.reuse)) }
        let reads = doc.schedule.map { pipeline.plan(pipeline.targets(of: $0)) }
        for (p, phase) in doc.schedule.enumerated() {
            for (i, id) in phase.reuse.enumerated() {
                let path = phase.path / "reuse" / i
                guard let node = pipeline.nodes[id] else { continue }  // reported with the references
                if node.stage is any CommittingStage {
                    problems.append(error(doc, "schedule.reuse", path,
                                          "stage '\(id)' (\(node.config.typeName)) acts; a phase reuses the values of stages that compute"))
                    continue
                }
                guard let wanted = reads[p][id] else {
                    problems.append(error(doc, "schedule.reuse", path,
                                          "this phase does not read '\(id)': it drives \(phase.run.map { "'\($0)'" }.joined(separator: ", ")), which need no value of it"))
                    continue
                }
                guard let q = (0..<p).last(where: { wanted.isSubset(of: plans[$0][id] ?? []) }) else {
                    problems.append(error(doc, "schedule.reuse", path,
                                          "no earlier phase of the step evaluates '\(id)' (\(wanted.sorted().joined(separator: ", "))), so there is nothing to reuse"))
                    continue
                }
                let closure = pipeline.upstream(of: [id])
                let between = Array(q..<p) + (phase.repeats > 1 ? [p] : [])
                change: for r in between {
                    for actor in pipeline.order where plans[r][actor] != nil {
                        guard let a = pipeline.nodes[actor], a.stage is any CommittingStage else { continue }
                        if let changed = ([actor] + a.references).first(where: closure.contains) {
                            let by = r == p ? "when this phase repeats" : "in \(doc.schedule[r].path)"
                            problems.append(error(doc, "schedule.reuse", path,
                                                  "'\(id)' cannot be reused: '\(actor)' (\(a.config.typeName)) changes '\(changed)' \(by), after \(doc.schedule[q].path) evaluated '\(id)'"))
                            break change
                        }
                    }
                }
            }
        }
        return problems
    }

    func error(_ doc: PipelineDocument, _ code: String, _ path: JSONPath, _ message: String, suggestion: String? = nil) -> PipelineError {
        PipelineError(code, file: doc.file, path: path, location: doc.locations[path], message, suggestion: suggestion)
    }

    /// Pass 1: each stage names a registered type and gives it valid keys. Returns the stages that
    /// do, with their wires and references read from their keys.
    func checkTypesAndKeys(_ doc: PipelineDocument) -> ([String: Pending], [PipelineError]) {
        var problems: [PipelineError] = []
        let validator = ConfigValidator(file: doc.file, locations: doc.locations)
        var pending: [String: Pending] = [:]
        for id in doc.stageOrder {
            let path = JSONPath.root / "stages" / id
            let raw = doc.stages[id]!
            guard raw.objectEntries != nil else {
                problems.append(error(doc, "key.type", path, "expected a stage object with a \"type\", found \(raw.typeName)"))
                continue
            }
            guard case .string(let typeName)? = raw["type"] else {
                problems.append(error(doc, "key.missing", path, "missing key 'type' (one of `ganflow stages`)"))
                continue
            }
            guard let type = registry[typeName] else {
                problems.append(error(doc, "stage.unknown", path / "type", "unknown stage type '\(typeName)'",
                                      suggestion: didYouMean(typeName, among: registry.sortedNames)))
                continue
            }
            let (values, found) = validator.validate(id: id, raw: raw, type: type, path: path)
            problems += found
            if !found.isEmpty { continue }
            var inputs: [String: Wire] = [:]
            var refs: [String] = []
            for key in type.configKeys {
                switch (key.type, values[key.name]) {
                case (.wire, .string(let s)?):
                    inputs[key.name] = Wire(parsing: s)!
                case (.wireMap, .object(let e)?):
                    for (name, v) in e { if case .string(let s) = v { inputs[key.port(name)] = Wire(parsing: s)! } }
                case (.stageRef, .string(let s)?):
                    refs.append(s)
                default: break
                }
            }
            pending[id] = Pending(type: type, config: StageConfig(stageID: id, typeName: typeName, path: path, values: values),
                                  inputs: inputs, refs: refs)
        }
        return (pending, problems)
    }

    /// Pass 2: wires, references and the schedule name stages that exist. Returns the stages
    /// whose wires or references do not.
    func checkReferences(_ doc: PipelineDocument, _ pending: [String: Pending]) -> (Set<String>, [PipelineError]) {
        var problems: [PipelineError] = []
        let ids = Set(doc.stageOrder)
        var failed = Set<String>()
        for id in doc.stageOrder {
            guard let p = pending[id] else { continue }
            let before = problems.count
            for key in p.type.configKeys {
                let path = JSONPath.root / "stages" / id / key.name
                switch key.type {
                case .wire:
                    if let w = p.inputs[key.name], !ids.contains(w.stage) {
                        problems.append(error(doc, "wire.stage", path, "no stage '\(w.stage)'", suggestion: didYouMean(w.stage, among: ids)))
                    }
                case .wireMap:
                    for (name, v) in p.config.raw(key.name).objectEntries ?? [] {
                        if case .string(let s) = v, let w = Wire(parsing: s), !ids.contains(w.stage) {
                            problems.append(error(doc, "wire.stage", path / name, "no stage '\(w.stage)'",
                                                  suggestion: didYouMean(w.stage, among: ids)))
                        }
                    }
                case .stageRef:
                    if case .string(let s) = p.config.raw(key.name), !ids.contains(s) {
                        problems.append(error(doc, "ref.stage", path, "no stage '\(s)'", suggestion: didYouMean(s, among: ids)))
                    }
                default: break
                }
            }
            if problems.count > before { failed.insert(id) }
        }
        for phase in doc.schedule {
            for (key, list) in [("run", phase.run), ("reuse", phase.reuse)] {
                for (i, target) in list.enumerated() where !ids.contains(target) {
                    let p = phase.path / key / i
                    problems.append(error(doc, "schedule.stage", doc.locations[p] != nil ? p : phase.path / key,
                                          "no stage '\(target)'", suggestion: didYouMean(target, among: ids)))
                }
            }
        }
        return (failed, problems)
    }

    /// Pass 3: the stages in an order where each comes after those it reads from or refers to,
    /// or the first cycle found.
    func dependencyOrder(_ doc: PipelineDocument, _ pending: [String: Pending]) -> ([String], PipelineError?) {
        var order: [String] = []
        var state: [String: Int] = [:]  // 1 visiting, 2 done
        var cycle: [String]?
        func visit(_ id: String, _ trail: [String]) {
            if state[id] == 2 || cycle != nil { return }
            if state[id] == 1 {
                let start = trail.firstIndex(of: id) ?? 0
                cycle = Array(trail[start...]) + [id]
                return
            }
            state[id] = 1
            let p = pending[id]!
            let deps = p.inputs.keys.sorted().map { p.inputs[$0]!.stage } + p.refs
            for d in deps where pending[d] != nil { visit(d, trail + [id]) }
            state[id] = 2
            order.append(id)
        }
        for id in doc.stageOrder where pending[id] != nil { visit(id, []) }
        guard let cycle else { return (order, nil) }
        return (order, error(doc, "graph.cycle", .root / "stages" / cycle[0], "the stages form a cycle: " + cycle.joined(separator: " -> ")))
    }

    /// Pass 4: builds the stages in order, checking that each input is wired to a value output.
    /// A stage is skipped when it, or a stage it depends on, has failed (`failed` grows).
    func buildStages(_ doc: PipelineDocument, _ pending: [String: Pending], order: [String], failed: inout Set<String>,
                     context: BuildContext) -> ([String: Pipeline.Node], [PipelineError]) {
        var problems: [PipelineError] = []
        var nodes: [String: Pipeline.Node] = [:]
        for id in order {
            let p = pending[id]!
            if failed.contains(id) { continue }
            let path = JSONPath.root / "stages" / id
            func inputPath(_ port: String) -> JSONPath { keyPath(p.config, port) }
            if p.inputs.values.contains(where: { failed.contains($0.stage) || pending[$0.stage] == nil })
                || p.refs.contains(where: { failed.contains($0) || pending[$0] == nil }) {
                failed.insert(id)
                continue
            }
            var inputTypes: [String: PortType] = [:]
            var wiringOK = true
            for (port, wire) in p.inputs.sorted(by: { $0.key < $1.key }) {
                let upstream = nodes[wire.stage]!.stage.outputs
                guard let t = upstream[wire.port] else {
                    problems.append(error(doc, "wire.port", inputPath(port),
                                          "stage '\(wire.stage)' (\(nodes[wire.stage]!.config.typeName)) has no output '\(wire.port)'; it has \(upstream.keys.sorted().joined(separator: ", "))",
                                          suggestion: didYouMean(wire.port, among: upstream.keys)))
                    wiringOK = false
                    continue
                }
                if t == .effect {
                    problems.append(error(doc, "wire.effect", inputPath(port), "'\(wire)' is an action, not a value"))
                    wiringOK = false
                }
                inputTypes[port] = t
            }
            guard wiringOK else { failed.insert(id); continue }
            do {
                let stage = try p.type.init(config: p.config, inputs: inputTypes, context: context)
                context.stages[id] = stage
                let until = p.config.optionalInt("until")
                nodes[id] = Pipeline.Node(id: id, stage: stage, config: p.config, inputs: p.inputs, references: p.refs,
                                          every: p.config.int("every"), from: p.config.int("from"), until: until)
            } catch let problem as StageProblem {
                let at = keyPath(p.config, problem.key)
                problems.append(error(doc, "stage.config", at, problem.message, suggestion: problem.suggestion))
                failed.insert(id)
            } catch let e as PipelineErrors {
                problems += e.errors
                failed.insert(id)
            } catch {
                problems.append(PipelineError("stage.build", file: doc.file, path: path, location: doc.locations[path],
                                              "\(error)"))
                failed.insert(id)
            }
        }
        return (nodes, problems)
    }

    /// Pass 5: the schedule drives stages that act.
    func checkScheduleTargets(_ doc: PipelineDocument, _ nodes: [String: Pipeline.Node]) -> [PipelineError] {
        var problems: [PipelineError] = []
        for phase in doc.schedule {
            for (i, target) in phase.run.enumerated() {
                guard let node = nodes[target] else { continue }
                if !node.stage.outputs.values.contains(.effect) {
                    problems.append(error(doc, "schedule.target", phase.path / "run" / i,
                                          "stage '\(target)' (\(node.config.typeName)) does not act; a phase drives optimizers and other stages with an effect"))
                }
            }
        }
        return problems
    }

    /// The last pass: warnings about outputs nobody reads, and those the stages raise themselves.
    func warnings(_ doc: PipelineDocument, _ nodes: [String: Pipeline.Node]) -> [PipelineError] {
        var used = Set<String>()
        for n in nodes.values {
            for w in n.inputs.values { used.insert(w.stage) }
            used.formUnion(n.references)
        }
        var warnings: [PipelineError] = []
        for id in doc.stageOrder {
            guard let n = nodes[id] else { continue }
            let acts = n.stage.outputs.values.contains(.effect)
            if !acts && !used.contains(id) {
                var w = error(doc, "stage.unused", .root / "stages" / id, "no stage reads the outputs of '\(id)'")
                w.severity = .warning
                warnings.append(w)
            }
            for message in n.stage.warnings {
                var w = error(doc, "stage.warning", .root / "stages" / id, message)
                w.severity = .warning
                warnings.append(w)
            }
        }
        return warnings
    }

    /// Where a stage's key or input port is written: `$.stages.D.lr`, or `$.stages.D.inputs.real`
    /// for a port named inside a wire map.
    func keyPath(_ config: StageConfig, _ key: String?) -> JSONPath {
        guard let key else { return config.path }
        if config.values[key] != nil { return config.path / key }
        // A port of a prefixed wire map (`labels:real`) is entry `real` of key `labels`.
        if let colon = key.firstIndex(of: ":"), config.values[String(key[..<colon])] != nil {
            return config.path / String(key[..<colon]) / String(key[key.index(after: colon)...])
        }
        if let map = config.values.first(where: { $0.value.objectEntries?.contains { $0.0 == key } == true }) {
            return config.path / map.key / key
        }
        return config.path / key
    }

    /// Pass 6: re-infers output types through the graph for each scenario of each `ScenarioSource`.
    func checkScenarios(nodes: [String: Pipeline.Node], order: [String], doc: PipelineDocument) -> [PipelineError] {
        var problems: [PipelineError] = []
        for sourceID in order {
            guard let source = nodes[sourceID]?.stage as? any ScenarioSource else { continue }
            for scenario in source.scenarios {
                var types: [Wire: PortType] = [:]
                var integers: [Wire: Int] = [:]
                for (port, v) in scenario.values { integers[Wire(stage: sourceID, port: port)] = v }
                for id in order {
                    let node = nodes[id]!
                    var inputs: [String: PortType] = [:]
                    var ints: [String: Int] = [:]
                    for (port, w) in node.inputs {
                        inputs[port] = types[w]
                        if let v = integers[w] { ints[port] = v }
                    }
                    let outputs: [String: PortType]
                    do {
                        outputs = id == sourceID ? node.stage.outputs : try node.stage.outputTypes(for: inputs, integers: ints)
                    } catch let p as StageProblem {
                        let at = keyPath(node.config, p.key)
                        problems.append(PipelineError("shape.scenario", file: doc.file, path: at, location: doc.locations[at],
                                                      "at \(scenario.label) (from '\(sourceID)'): \(p.message)", suggestion: p.suggestion))
                        break
                    } catch {
                        problems.append(PipelineError("shape.scenario", file: doc.file, path: .root / "stages" / id,
                                                      "at \(scenario.label) (from '\(sourceID)'): \(error)"))
                        break
                    }
                    for (port, t) in outputs { types[Wire(stage: id, port: port)] = t }
                }
            }
        }
        return problems
    }
}
