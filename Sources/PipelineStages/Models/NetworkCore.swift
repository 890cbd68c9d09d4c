import NeuralNet
import PipelineGraph
import TensorRuntime

/// What every model stage shares: one network applied with shared weights to each of its
/// inputs, its parameters under PyTorch `state_dict` names, and its checkpoint state.
final class NetworkCore: @unchecked Sendable {
    let net: any Layer
    /// Input ports in the order they are evaluated (the order of the config), and the output
    /// port each produces.
    let ports: [(input: String, output: String)]

    init(net: any Layer, ports: [(input: String, output: String)]) {
        self.net = net
        self.ports = ports
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
    /// With `sameShapes`, every input must have the first one's shape (a discriminator sees real
    /// and generated images of one size).
    func outputTypes(_ inputs: [String: PortType], sameShapes: Bool = false) throws -> [String: PortType] {
        var out: [String: PortType] = [:]
        let first = ports[0].input
        for (input, output) in ports {
            guard let t = inputs[input] else { throw StageProblem(key: input, "input '\(input)' is not wired") }
            if sameShapes, input != first, let t0 = inputs[first], t != t0 {
                throw StageProblem(key: input, "input '\(input)' is \(t) but '\(first)' is \(t0); all inputs must have the same shape")
            }
            guard let shape = t.shape else { throw StageProblem(key: input, "expected an image tensor, found \(t)") }
            do {
                out[output] = .tensor(try net.outputShape(for: shape))
            } catch let e as TensorError {
                throw StageProblem(key: input, e.message)
            }
        }
        return out
    }

    func inputsNeeded(for output: String) -> [String]? {
        ports.first { $0.output == output }.map { [$0.input] }
    }

    /// Runs the network on each requested input, in declaration order (so running statistics
    /// update in the same order whatever the scheduler does).
    func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let mode: ForwardMode = e.mode == .train ? .train : .sample
        var out: [String: PortValue] = [:]
        for (input, output) in ports where e.outputs.contains(output) {
            out[output] = .tensor(try net.forward(try e.tensor(input), mode: mode))
        }
        return out
    }

    var parameters: [(String, Tensor)] { net.namedParameters }

    func checkpointState() -> StageState {
        var s = StageState()
        for (n, t) in net.namedParameters + net.namedBuffers { s.tensors[n] = t }
        for (n, v) in net.namedCounters { s.values[n] = String(v) }
        return s
    }

    func restore(_ s: StageState) throws {
        for (n, t) in net.namedParameters + net.namedBuffers {
            guard let saved = s.tensors[n] else { throw StageProblem("the checkpoint has no tensor '\(n)'") }
            guard saved.shape == t.shape else {
                throw StageProblem("tensor '\(n)' has shape \(describe(saved.shape)) in the checkpoint, expected \(describe(t.shape))")
            }
            try t.assign(saved)
        }
        for (n, _) in net.namedCounters {
            if let v = s.values[n].flatMap(Int.init) { net.setCounter(n, v) }
        }
    }
}

/// Keys shared by model stages: one `input` wire or a map of `inputs` (one output per name).
enum ModelKeys {
    static func wiring(single: String) -> [ConfigKey] {
        [
            ConfigKey("input", .wire, default: .null, "The input, producing output '\(single)'."),
            ConfigKey("inputs", .wireMap, default: .null, "Several inputs through the same weights; one output per name."),
        ]
    }

    static func checkWiring(_ config: StageConfig) throws {
        if config.isNull("input") == config.isNull("inputs") {
            throw StageProblem(key: config.isNull("input") ? nil : "inputs", "give either 'input' or 'inputs'")
        }
    }

    /// The seed stream for a model's initial weights: the pipeline seed and the stage id.
    static func initRandom(_ config: StageConfig, _ context: BuildContext) -> PhiloxRandom {
        PhiloxRandom(seed: context.seed, stream: stableHash("init/" + config.stageID))
    }
}
