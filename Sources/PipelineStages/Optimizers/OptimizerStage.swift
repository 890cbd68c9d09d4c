import NeuralNet
import PipelineGraph
import TensorRuntime

/// How an optimizer stage makes its optimizer from its configuration.
public protocol OptimizerRecipe: Sendable {
    static var typeName: String { get }
    static var summary: String { get }
    static var keys: [ConfigKey] { get }
    static func make(_ parameters: [(String, Tensor)], _ config: StageConfig) throws -> any Optimizer
}

/// Minimises one loss with respect to one model stage's parameters only.
///
///     "optD": { "type": "optimizer.adam", "minimize": "loss.discriminator", "parameters": "D", "lr": 0.0002 }
///
/// Gradients are taken for that stage's parameters alone, so "freeze D while G trains" follows
/// from the wiring. The update waits until every stage of the evaluation has run (so two
/// optimizers driven by one phase both see the same weights). With `skipBelow`, the update is
/// skipped while the loss is under the threshold (the tutorial's balance policy); `skipped`
/// reports the fraction of skipped updates so far.
public final class OptimizerStage<Recipe: OptimizerRecipe>: CommittingStage, @unchecked Sendable {
    public static var typeName: String { Recipe.typeName }
    public static var summary: String { Recipe.summary }
    public static var configKeys: [ConfigKey] {
        [
            ConfigKey("minimize", .wire, "The scalar loss to minimise."),
            ConfigKey("parameters", .stageRef, "The model stage whose parameters this optimizer updates."),
        ] + Recipe.keys + [
            ConfigKey("skipBelow", .number(), default: .null, "Skip the update while the loss is below this (null: never skip)."),
        ]
    }

    public let outputs: [String: PortType] = ["update": .effect, "lr": .scalar, "skipped": .scalar]
    let optimizer: any Optimizer
    let targetID: String
    let skipBelow: Double?
    var pending: [Tensor]?
    var updates = 0
    var skips = 0

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        guard inputs["minimize"] == .scalar else {
            throw StageProblem(key: "minimize", "expected a scalar loss, found \(inputs["minimize"]!)")
        }
        targetID = config.string("parameters")
        let params = context.stage(targetID)?.parameters ?? []
        if params.isEmpty {
            throw StageProblem(key: "parameters", "stage '\(targetID)' has no trainable parameters")
        }
        optimizer = try Recipe.make(params, config)
        skipBelow = config.optionalDouble("skipBelow")
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        let loss = try e.tensor("minimize")
        let value = Double(loss.item())
        if let skipBelow, value < skipBelow {
            pending = nil
            skips += 1
        } else {
            pending = try gradients(of: loss, wrt: optimizer.parameters.map(\.tensor))
            updates += 1
        }
        let total = max(updates + skips, 1)
        return ["update": .effect, "lr": .scalar(Tensor(Float(optimizer.learningRate))),
                "skipped": .scalar(Tensor(Float(skips) / Float(total)))]
    }

    public func commit() throws {
        guard let g = pending else { return }
        pending = nil
        try optimizer.step(gradients: g)
    }

    public func checkpointState() throws -> StageState {
        let s = optimizer.exportState(prefix: "optimizer")
        var values = s.integers.mapValues(String.init)
        values["updates"] = String(updates)
        values["skips"] = String(skips)
        return StageState(tensors: s.tensors, values: values)
    }

    public func restore(_ state: StageState) throws {
        var ints: [String: Int] = [:]
        for (k, v) in state.values where k.hasPrefix("optimizer") { ints[k] = Int(v) }
        do {
            try optimizer.importState(OptimizerState(tensors: state.tensors, integers: ints), prefix: "optimizer")
        } catch {
            throw StageProblem("\(error)")
        }
        updates = state.values["updates"].flatMap(Int.init) ?? 0
        skips = state.values["skips"].flatMap(Int.init) ?? 0
    }
}

/// Adam (Kingma and Ba), PyTorch's update rule; L2 weight decay added to the gradient.
public enum AdamRecipe: OptimizerRecipe {
    public static let typeName = "optimizer.adam"
    public static let summary = "Adam (PyTorch's rule). Outputs 'update' (the action), 'lr' and 'skipped'."
    public static let keys: [ConfigKey] = [
        ConfigKey("lr", .number(min: 0), default: .number(0.0002), "Learning rate."),
        ConfigKey("betas", .numberList(count: 2), default: .array([.number(0.5), .number(0.999)]), "Coefficients of the running averages of the gradient and its square."),
        ConfigKey("eps", .number(min: 0), default: .number(1e-8), "Added to the denominator."),
        ConfigKey("weightDecay", .number(min: 0), default: .number(0), "L2 penalty added to the gradient."),
    ]
    public static func make(_ parameters: [(String, Tensor)], _ config: StageConfig) throws -> any Optimizer {
        let b = config.doubles("betas")
        return try Adam(parameters: parameters.map { (name: $0.0, tensor: $0.1) }, learningRate: config.double("lr"),
                        beta1: b[0], beta2: b[1], eps: config.double("eps"), weightDecay: config.double("weightDecay"))
    }
}
