import PipelineGraph
import TensorRuntime

/// Small stages for testing the core without the real models: a random source, a scaling model
/// with a parameter, a squared-distance loss, a plain SGD step, and a recording sink.
final class ToySource: Stage, @unchecked Sendable {
    static let typeName = "test.source"
    static let summary = "Random vectors."
    static let configKeys = [ConfigKey("size", .int(min: 1), default: .number(4), "Vector length.")]
    let size: Int
    let outputs: [String: PortType]
    let evaluations = Locked(0)
    init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        size = config.int("size")
        outputs = ["value": .tensor([size])]
    }
    func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        evaluations.withLock { $0 += 1 }
        var rng = e.random()
        return ["value": .tensor(Tensor(randomNormal: [size], using: &rng))]
    }
}

final class ToyScale: Stage, @unchecked Sendable {
    static let typeName = "test.scale"
    static let summary = "Multiplies by a learned vector."
    static let configKeys = [ConfigKey("input", .wire, "Input vector.")]
    let weight: Tensor
    let outputs: [String: PortType]
    init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        guard case .tensor(let s)? = inputs["input"], s.count == 1 else {
            throw StageProblem(key: "input", "expected a vector, found \(inputs["input"]!)")
        }
        weight = Tensor(repeating: 1, shape: s).requiringGradients()
        outputs = ["out": .tensor(s)]
    }
    func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        ["out": .tensor(try e.tensor("input") * weight)]
    }
    var parameters: [(String, Tensor)] { [("weight", weight)] }
    func checkpointState() throws -> StageState { StageState(tensors: ["weight": weight]) }
    func restore(_ state: StageState) throws {
        guard let w = state.tensors["weight"] else { throw StageProblem("no weight") }
        try weight.assign(w)
    }
}

final class ToyDistance: Stage, @unchecked Sendable {
    static let typeName = "test.distance"
    static let summary = "Squared distance."
    static let configKeys = [ConfigKey("a", .wire, "First."), ConfigKey("b", .wire, "Second.")]
    let outputs: [String: PortType] = ["loss": .scalar]
    init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        _ = try outputTypes(for: inputs)
    }
    func outputTypes(for inputs: [String: PortType]) throws -> [String: PortType] {
        guard inputs["a"] == inputs["b"] else {
            throw StageProblem(key: "b", "shape \(inputs["b"]!) does not match \(inputs["a"]!)")
        }
        return outputs
    }
    func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let d = try e.tensor("a") - e.tensor("b")
        return ["loss": .scalar(try (d * d).sum(axes: [0]))]
    }
}

final class ToySGD: CommittingStage, @unchecked Sendable {
    static let typeName = "test.sgd"
    static let summary = "Plain gradient descent."
    static let configKeys = [
        ConfigKey("minimize", .wire, "Loss."),
        ConfigKey("parameters", .stageRef, "Model."),
        ConfigKey("lr", .number(min: 0), default: .number(0.1), "Step size."),
    ]
    let outputs: [String: PortType] = ["update": .effect]
    let params: [Tensor]
    let lr: Float
    var pending: [Tensor]?
    init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        params = context.stage(config.string("parameters"))!.parameters.map(\.1)
        lr = config.float("lr")
    }
    func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        pending = try gradients(of: e.tensor("minimize"), wrt: params)
        return ["update": .effect]
    }
    func commit() throws {
        for (p, g) in zip(params, pending!) { try p.assign(try p - g * lr) }
    }
}

/// Records the values it is given, so tests can see when sinks ran.
final class ToySink: Stage, @unchecked Sendable {
    static let typeName = "test.sink"
    static let summary = "Records inputs."
    static let configKeys = [ConfigKey("input", .wire, "What to record.")]
    let outputs: [String: PortType] = ["written": .effect]
    let steps = Locked<[Int]>([])
    init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {}
    func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        steps.withLock { $0.append(e.step) }
        return ["written": .effect]
    }
}

let toyRegistry = StageRegistry([ToySource.self, ToyScale.self, ToyDistance.self, ToySGD.self, ToySink.self])

/// A schedule visiting several sizes, as progressive growing does.
final class ToyGrowth: ScenarioSource, @unchecked Sendable {
    static let typeName = "test.growth"
    static let summary = "Sizes over a run."
    static let configKeys = [ConfigKey("sizes", .intList(), "Sizes visited.")]
    let sizes: [Int]
    let outputs: [String: PortType] = ["size": .integer]
    init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws { sizes = config.ints("sizes") }
    var scenarios: [(label: String, values: [String: Int])] { sizes.map { ("size \($0)", ["size": $0]) } }
    func evaluate(_ e: Evaluation) throws -> [String: PortValue] { ["size": .integer(sizes[0])] }
}

/// A source whose vector length follows an integer input.
final class ToySizedSource: Stage, @unchecked Sendable {
    static let typeName = "test.sized"
    static let summary = "Vectors of a given size."
    static let configKeys = [ConfigKey("size", .wire, "The size.")]
    let outputs: [String: PortType] = ["value": .tensor([4])]
    init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {}
    func outputTypes(for inputs: [String: PortType], integers: [String: Int]) throws -> [String: PortType] {
        ["value": .tensor([integers["size"] ?? 4])]
    }
    func evaluate(_ e: Evaluation) throws -> [String: PortValue] { ["value": .tensor(Tensor(zeros: [e.integer("size") ?? 4]))] }
}

let scenarioRegistry = StageRegistry([ToySource.self, ToyScale.self, ToyDistance.self, ToySGD.self, ToyGrowth.self, ToySizedSource.self])
