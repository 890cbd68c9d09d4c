import NeuralNet
import PipelineGraph
import TensorRuntime

/// What every model stage shares: one network applied with shared weights to each of its
/// inputs, its parameters under PyTorch `state_dict` names, and its checkpoint state.
///
/// Generators may keep an exponential moving average of their weights (`ema`), used for sample
/// evaluations; discriminators may add instance noise to their inputs while training.
public final class NetworkCore: @unchecked Sendable {
    let net: any Layer
    /// Input ports in the order they are evaluated (the order of the config), and the output
    /// port each produces.
    let ports: [(input: String, output: String)]
    let ema: ExponentialMovingAverage?
    let instanceNoise: InstanceNoise?
    /// Every input must have the first one's shape (a discriminator sees real and generated
    /// images of one size).
    let sameShapes: Bool
    /// Whether training evaluations on several ranks compute batch statistics over every rank's
    /// batch (the pipeline's `distributed.syncBatchNorm`).
    let synchronizesBatchNorm: Bool
    /// The class labels of each input of a class-conditional network, or nil.
    let labels: LabelWiring?
    /// The classes of an auxiliary classifier head: the network's [N, 1 + classes] output is
    /// served as the logit `<output>` [N] and the class logits `<output>Classes` [N, classes].
    var auxiliaryClasses: Int? { labels?.conditioning.method.hasAuxiliaryClassifier == true ? labels?.conditioning.classes : nil }

    /// `context` is the run the stage is built for; nil for a network that is never evaluated in
    /// a run (weights loaded or saved on their own).
    init(net: any Layer, ports: [(input: String, output: String)], ema: ExponentialMovingAverage? = nil,
         instanceNoise: InstanceNoise? = nil, sameShapes: Bool = false, labels: LabelWiring? = nil, context: BuildContext? = nil) {
        self.net = net
        self.labels = labels
        self.sameShapes = sameShapes
        self.ports = ports
        self.ema = ema
        self.instanceNoise = instanceNoise
        synchronizesBatchNorm = context?.distributed.syncBatchNorm ?? false
    }

    /// Wiring of a model stage: a single `input` wire gives output `single`; an `inputs` map gives
    /// one output per name.
    static func ports(_ config: StageConfig, single: String) -> [(input: String, output: String)] {
        if let entries = config.raw("inputs").objectEntries {
            return entries.map { ($0.0, $0.0) }
        }
        return [("input", single)]
    }

    /// Output types, each computed from the network's shape rules; a misfit names the port.
    func outputTypes(_ inputs: [String: PortType]) throws -> [String: PortType] {
        var out: [String: PortType] = [:]
        let first = ports[0].input
        for (input, output) in ports {
            guard let t = inputs[input] else { throw StageProblem(key: input, "input '\(input)' is not wired") }
            if sameShapes, input != first, let t0 = inputs[first], t != t0 {
                throw StageProblem(key: input, "input '\(input)' is \(t) but '\(first)' is \(t0); all inputs must have the same shape")
            }
            guard let shape = t.shape else { throw StageProblem(key: input, "expected an image tensor, found \(t)") }
            do {
                let y = try net.outputShape(for: shape)
                if let k = auxiliaryClasses {
                    out[output] = .tensor([y[0]])
                    out[output + Self.classesSuffix] = .tensor([y[0], k])
                } else {
                    out[output] = .tensor(y)
                }
            } catch let e as TensorError {
                throw StageProblem(key: input, e.message)
            }
        }
        return out
    }

    func inputsNeeded(for output: String) -> [String]? {
        ports.first { $0.output == output || $0.output + Self.classesSuffix == output }.map { [$0.input] + (labels?.labelPorts[$0.input].map { [$0] } ?? []) }
    }

    /// What an auxiliary classifier's class logits add to the name of an output.
    static let classesSuffix = "Classes"

    /// `body` with the labels of `input` (none for an unconditional network) set for the
    /// conditional layers.
    func withLabels<T>(of input: String, _ e: Evaluation, _ body: () throws -> T) throws -> T {
        guard let port = labels?.labelPorts[input] else { return try body() }
        return try ClassLabels.with(try e.tensor(port), body)
    }

    /// Runs the network on each requested input, in declaration order (so running statistics
    /// update in the same order whatever the scheduler does). Sample evaluations use the moving
    /// average when there is one. Training evaluations of a data-parallel run synchronise batch
    /// statistics over the evaluation's communicator when the pipeline asks for it.
    func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let mode: ForwardMode = e.mode == .train ? .train : .sample
        let model = e.mode == .sample ? (ema?.average ?? net) : net
        let sync = synchronizesBatchNorm && e.mode == .train && e.ranks > 1 ? e.communicator : nil
        var out: [String: PortValue] = [:]
        for (input, output) in ports where e.outputs.contains(output) || e.outputs.contains(output + Self.classesSuffix) {
            var x = try e.tensor(input)
            if e.mode == .train, let instanceNoise {
                var rng = e.random("instanceNoise/" + input)
                x = try instanceNoise.apply(x, step: e.step, rng: &rng)
            }
            let y = try withLabels(of: input, e) {
                try BatchNorm.synchronized(over: sync) { try model.forward(x, mode: mode) }
            }
            if let k = auxiliaryClasses {
                let n = y.shape[0]
                out[output] = .tensor(try y.sliced(axis: 1, 0..<1).reshaped([n]))
                out[output + Self.classesSuffix] = .tensor(try y.sliced(axis: 1, 1..<(1 + k)))
            } else {
                out[output] = .tensor(y)
            }
        }
        return out
    }

    var parameters: [(String, Tensor)] { net.namedParameters }

    /// The network (or its moving average) on `latent`, as a sample evaluation runs it.
    func sampleForward(_ latent: Tensor, movingAverage: Bool) throws -> Tensor {
        try ((movingAverage ? ema?.average : nil) ?? net).forward(latent, mode: .sample)
    }

    /// `sampleForward` with the class labels [N] of the latents (nil: unconditional).
    func sampleForward(_ latent: Tensor, labels: Tensor?, movingAverage: Bool) throws -> Tensor {
        if labels != nil && self.labels == nil { throw StageProblem("this generator is not class-conditional; it takes no class") }
        return try ClassLabels.with(labels) { try sampleForward(latent, movingAverage: movingAverage) }
    }

    func checkpointState() -> StageState {
        var s = StageState()
        for (n, t) in net.namedParameters + net.namedBuffers { s.tensors[n] = t }
        for (n, v) in net.namedCounters { s.values[n] = String(v) }
        if let ema {
            let avg = ema.average
            for (n, t) in avg.namedParameters + avg.namedBuffers { s.tensors[Self.emaPrefix + n] = t }
            for (n, v) in avg.namedCounters { s.values[Self.emaPrefix + n] = String(v) }
            s.values["emaUpdates"] = String(ema.updates)
        }
        return s
    }

    func restore(_ s: StageState) throws {
        try Self.assign(s.tensors, s.values, to: net, prefix: "")
        if let ema {
            try Self.assign(s.tensors, s.values, to: ema.average, prefix: Self.emaPrefix)
            ema.updates = s.values["emaUpdates"].flatMap(Int.init) ?? 0
        }
    }

    /// Sets `layer`'s parameters, buffers and counters from `tensors[prefix + name]`.
    static func assign(_ tensors: [String: Tensor], _ values: [String: String], to layer: any Layer, prefix: String) throws {
        for (n, t) in layer.namedParameters + layer.namedBuffers {
            guard let saved = tensors[prefix + n] else { throw StageProblem("the checkpoint has no tensor '\(prefix + n)'") }
            guard saved.shape == t.shape else {
                throw StageProblem("tensor '\(prefix + n)' has shape \(describe(saved.shape)) in the checkpoint, expected \(describe(t.shape))")
            }
            try t.assign(saved)
        }
        for (n, _) in layer.namedCounters {
            if let v = values[prefix + n].flatMap(Int.init) { layer.setCounter(n, v) }
        }
    }

    // MARK: State dicts

    /// Names of the moving average's tensors in a checkpoint: `ema.` and the PyTorch name.
    static let emaPrefix = "ema."

    /// The network's (or its moving average's) `state_dict`, as safetensors entries that PyTorch's
    /// `load_state_dict` accepts: F32 parameters and buffers, I64 scalar counters.
    func stateDict(ema useEMA: Bool) throws -> SafeTensorsArchive {
        try Self.stateDict(from: checkpointState(), ema: useEMA)
    }

    /// The `state_dict` held in a model stage's checkpoint state: its own tensors, or with `ema`
    /// those of its moving average. Counters (metadata strings in a checkpoint) become I64 scalars.
    static func stateDict(from state: StageState, ema useEMA: Bool) throws -> SafeTensorsArchive {
        let prefix = useEMA ? emaPrefix : ""
        var archive = SafeTensorsArchive(metadata: ["format": "pt"])
        let names = state.tensors.keys.filter { useEMA ? $0.hasPrefix(prefix) : !$0.hasPrefix(emaPrefix) }
        if useEMA && names.isEmpty { throw StageProblem("this stage keeps no moving average (set 'ema' on it)") }
        for name in names.sorted() { archive.set(String(name.dropFirst(prefix.count)), state.tensors[name]!) }
        for (name, value) in state.values.sorted(by: { $0.key < $1.key })
        where name.hasSuffix("num_batches_tracked") && (useEMA ? name.hasPrefix(prefix) : !name.hasPrefix(emaPrefix)) {
            guard let n = Int64(value) else { throw StageProblem("counter '\(name)' is not an integer: '\(value)'") }
            archive.set(String(name.dropFirst(prefix.count)), integer: n)
        }
        return archive
    }

    /// Loads a `state_dict` strictly: every parameter and buffer present with its shape, nothing
    /// else; counters are optional (PyTorch files saved before they existed lack them). The moving
    /// average, if any, starts again from the loaded weights.
    func loadStateDict(_ archive: SafeTensorsArchive) throws {
        let expected = net.namedParameters + net.namedBuffers
        let known = Set(expected.map(\.0) + net.namedCounters.map(\.0))
        let unexpected = archive.names.filter { !known.contains($0) }
        if !unexpected.isEmpty {
            throw StageProblem("unexpected tensors \(unexpected.prefix(5).joined(separator: ", "))"
                + (unexpected.count > 5 ? ", ..." : ""))
        }
        var tensors: [String: Tensor] = [:]
        var values: [String: String] = [:]
        for (name, _) in expected {
            guard archive.entry(name) != nil else { throw StageProblem("missing tensor '\(name)'") }
            tensors[name] = try archive.tensor(name)
        }
        for (name, _) in net.namedCounters where archive.entry(name) != nil {
            guard let n = try archive.integers(name).first else { throw StageProblem("'\(name)' is empty") }
            values[name] = String(n)
        }
        do {
            try Self.assign(tensors, values, to: net, prefix: "")
        } catch let p as StageProblem {
            throw StageProblem(p.message.replacingOccurrences(of: "in the checkpoint", with: "in the file"))
        }
        try ema?.copy()
    }
}
