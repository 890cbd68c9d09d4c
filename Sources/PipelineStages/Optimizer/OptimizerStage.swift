import Foundation
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

/// A model stage that wants to hear when an optimizer has changed its parameters (to update a
/// moving average of them).
///
/// The optimizer calls it from `commit`, right after the step, so the average follows exactly the
/// updates that happened: none for a skipped update, one per step of an n-critic schedule, and
/// the last one before a checkpoint is written. (Updating at the start of the model's next
/// evaluation instead would miss the final step and count skipped updates.)
protocol ParameterUpdateListener: AnyObject {
    func parametersDidUpdate() throws
}

/// Minimises one loss with respect to one model stage's parameters only.
///
///     "optD": { "type": "optimizer.adam", "minimize": "loss.discriminator", "parameters": "D", "lr": 0.0002 }
///
/// Gradients are taken for that stage's parameters alone, so "freeze D while G trains" follows
/// from the wiring. The update waits until every stage of the evaluation has run (so two
/// optimizers driven by one phase both see the same weights). With `skipBelow`, the update is
/// skipped while the loss is under the threshold (the tutorial's balance policy); `skipped`
/// reports the fraction of skipped updates so far. A `schedule` sets the learning rate from the
/// number of updates taken (skipped ones do not count); `lr` reports the rate of the next update.
///
/// In a data-parallel run the gradients are averaged over the ranks, bucket by bucket while
/// backward runs (`GradientAllreduce`), and `skipBelow` compares the loss averaged over the ranks,
/// so every rank takes the same decision.
public final class OptimizerStage<Recipe: OptimizerRecipe>: CommittingStage, @unchecked Sendable {
    public static var typeName: String { Recipe.typeName }
    public static var summary: String { Recipe.summary + " Outputs 'update' (the action), 'lr' and 'skipped'." }
    public static var configKeys: [ConfigKey] {
        [
            ConfigKey("minimize", .wire, "The scalar loss to minimise."),
            ConfigKey("parameters", .stageRef, "The model stage whose parameters this optimizer updates."),
        ] + Recipe.keys + [
            ConfigKey("schedule", .any, default: .string("constant"),
                      "Learning rate schedule: \"constant\", {\"type\": \"step\", \"stepSize\": n, \"gamma\": g} or {\"type\": \"linear\", \"start\": a, \"end\": b, \"finalFactor\": f}."),
            ConfigKey("lrFactors", .any, default: .null,
                      "Factors on the learning rate of the parameters whose name matches a pattern ('*' for any text), e.g. {\"*.gain.weight\": 10}: PyTorch's parameter groups. The first matching pattern wins; each must match a parameter."),
            ConfigKey("skipBelow", .number(), default: .null, "Skip the update while the loss is below this (null: never skip)."),
            ConfigKey("lrInput", .wire, default: .null, "A scalar input that replaces 'lr' as the base rate of every update (a progressive schedule's per-resolution 'lr')."),
            ConfigKey("resetOn", .wire, default: .null, "An integer input; the optimizer's moments and step count are reset whenever it changes (a progressive schedule's 'phase' or 'resolution')."),
        ]
    }

    public let outputs: [String: PortType] = ["update": .effect, "lr": .scalar, "skipped": .scalar]
    let optimizer: any Optimizer
    let schedule: LearningRateSchedule
    let targetID: String
    weak var listener: (any ParameterUpdateListener)?
    let skipBelow: Double?
    var pending: [Tensor]?
    var updates = 0
    var skips = 0
    /// The base rate from `lrInput` at the last evaluation, if wired.
    var wiredRate: Double?
    /// The value of `resetOn` at the last training evaluation; checkpointed.
    var resetValue: Int?
    /// Resets taken because `resetOn` changed.
    var resets = 0
    /// Averages gradients over the ranks of a data-parallel run; nil alone.
    let allreduce: GradientAllreduce?

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        guard inputs["minimize"] == .scalar else {
            throw StageProblem(key: "minimize", "expected a scalar loss, found \(inputs["minimize"]!)")
        }
        targetID = config.string("parameters")
        let target = context.stage(targetID)
        let params = target?.parameters ?? []
        if params.isEmpty {
            throw StageProblem(key: "parameters", "stage '\(targetID)' has no trainable parameters")
        }
        listener = target as? any ParameterUpdateListener
        allreduce = context.ranks > 1
            ? GradientAllreduce(shapes: params.map(\.1.shape), communicator: context.communicator,
                                bucketBytes: context.distributed.bucketKiB * 1024, label: config.stageID)
            : nil
        do {
            optimizer = try Recipe.make(params, config)
        } catch let e as OptimizerError {
            throw StageProblem(e.message)
        }
        if !config.isNull("lrFactors") {
            guard let slots = optimizer as? SlotOptimizer else { throw StageProblem(key: "lrFactors", "\(Recipe.typeName) takes no per-parameter rates") }
            do {
                try slots.setRateFactors(try Self.rateFactors(config.raw("lrFactors"), names: params.map(\.0)))
            } catch let e as OptimizerError {
                throw StageProblem(key: "lrFactors", e.message)
            }
        }
        schedule = try Self.schedule(config.raw("schedule"), baseRate: optimizer.learningRate)
        skipBelow = config.optionalDouble("skipBelow")
        if let t = inputs["lrInput"], t != .scalar { throw StageProblem(key: "lrInput", "expected a scalar learning rate, found \(t)") }
        if let t = inputs["resetOn"], t != .integer { throw StageProblem(key: "resetOn", "expected an integer, found \(t)") }
    }

    /// The rate of the next update: the schedule's, from the wired base rate when there is one.
    func nextRate() -> Double {
        guard let wiredRate else { return schedule.rate(atStep: optimizer.stepCount) }
        var s = schedule
        s.baseRate = wiredRate
        return s.rate(atStep: optimizer.stepCount)
    }

    /// Reads the `lrFactors` key: each parameter's factor from the first pattern its name
    /// matches, 1 when none does.
    static func rateFactors(_ json: JSONValue, names: [String]) throws -> [Double] {
        guard let entries = json.objectEntries else {
            throw StageProblem(key: "lrFactors", "expected an object of factors by parameter-name pattern, found \(json.serialized(indent: nil))")
        }
        var patterns: [(pattern: String, factor: Double)] = []
        for (pattern, value) in entries {
            guard case .number(let f) = value, f.isFinite, f >= 0 else {
                throw StageProblem(key: "lrFactors", "factor of '\(pattern)': expected a number of at least 0, found \(value.serialized(indent: nil))")
            }
            guard names.contains(where: { globMatches(pattern, $0) }) else {
                throw StageProblem(key: "lrFactors", "'\(pattern)' matches no parameter", suggestion: didYouMean(pattern, among: names))
            }
            patterns.append((pattern, f))
        }
        return names.map { name in patterns.first { globMatches($0.pattern, name) }?.factor ?? 1 }
    }

    /// Reads the `schedule` key.
    static func schedule(_ json: JSONValue, baseRate: Double) throws -> LearningRateSchedule {
        func problem(_ m: String) -> StageProblem { StageProblem(key: "schedule", m) }
        let kind: LearningRateSchedule.Kind
        switch json {
        case .string("constant"):
            kind = .constant
        case .object(let entries):
            let fields = Dictionary(entries, uniquingKeysWith: { a, _ in a })
            func number(_ key: String, _ fallback: Double? = nil) throws -> Double {
                switch fields[key] {
                case .number(let n)?: return n
                case nil: if let fallback { return fallback }; throw problem("missing '\(key)'")
                case let v?: throw problem("'\(key)' must be a number, found \(v.typeName)")
                }
            }
            func integer(_ key: String) throws -> Int {
                let n = try number(key)
                guard n.rounded() == n, abs(n) < 1e12 else { throw problem("'\(key)' must be an integer, found \(n)") }
                return Int(n)
            }
            let allowed: [String]
            switch fields["type"] {
            case .string("constant")?:
                allowed = ["type"]
                kind = .constant
            case .string("step")?:
                allowed = ["type", "stepSize", "gamma"]
                kind = .step(stepSize: try integer("stepSize"), gamma: try number("gamma", 0.1))
            case .string("linear")?:
                allowed = ["type", "start", "end", "finalFactor"]
                kind = .linearDecay(start: try integer("start"), end: try integer("end"), finalFactor: try number("finalFactor", 0))
            default:
                throw problem("'type' must be one of constant, step, linear")
            }
            if let extra = entries.map(\.0).first(where: { !allowed.contains($0) }) {
                throw StageProblem(key: "schedule", "unknown key '\(extra)' in the schedule; it takes " + allowed.joined(separator: ", "))
            }
        default:
            throw problem("expected \"constant\" or an object with a 'type' (constant, step, linear), found \(json.serialized(indent: nil))")
        }
        do {
            return try LearningRateSchedule(baseRate: baseRate, kind: kind)
        } catch let e as OptimizerError {
            throw problem(e.message)
        }
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        if let value = e.integer("resetOn") {
            // The official ProGAN resets Adam when a resolution's layers appear and when they
            // finish fading in; a change of the wired integer is that moment.
            if let last = resetValue, last != value {
                optimizer.resetState()
                resets += 1
            }
            resetValue = value
        }
        if let rate = e.inputs["lrInput"]?.tensor { wiredRate = Double(rate.item()) }
        let loss = try e.tensor("minimize")
        var value = Double(loss.item())
        if let allreduce, skipBelow != nil {
            var v = [value]
            try allreduce.communicator.allreduce(&v, operation: "loss average (\(e.stageID))")
            value = v[0] / Double(allreduce.communicator.size)
        }
        if let skipBelow, value < skipBelow {
            pending = nil
            skips += 1
        } else if let allreduce {
            pending = try allreduce.gradients(of: loss, wrt: optimizer.parameters.map(\.tensor))
            updates += 1
        } else {
            pending = try gradients(of: loss, wrt: optimizer.parameters.map(\.tensor))
            updates += 1
        }
        optimizer.learningRate = nextRate()
        let total = max(updates + skips, 1)
        return ["update": .effect, "lr": .scalar(Tensor(Float(optimizer.learningRate))),
                "skipped": .scalar(Tensor(Float(skips) / Float(total)))]
    }

    public func commit() throws {
        guard let g = pending else { return }
        pending = nil
        optimizer.learningRate = nextRate()
        try optimizer.step(gradients: g)
        try listener?.parametersDidUpdate()
    }

    public func checkpointState() throws -> StageState {
        let s = optimizer.exportState(prefix: "optimizer")
        var values = s.integers.mapValues(String.init)
        values["updates"] = String(updates)
        values["skips"] = String(skips)
        if let resetValue {
            values["resetValue"] = String(resetValue)
            values["resets"] = String(resets)
        }
        if let wiredRate { values["wiredRate"] = String(wiredRate) }
        return StageState(tensors: s.tensors, values: values)
    }

    public func restore(_ state: StageState) throws {
        try OptimizerState.restore(from: state, prefix: "optimizer", into: optimizer.importState)
        updates = state.values["updates"].flatMap(Int.init) ?? 0
        skips = state.values["skips"].flatMap(Int.init) ?? 0
        resetValue = state.values["resetValue"].flatMap(Int.init)
        resets = state.values["resets"].flatMap(Int.init) ?? 0
        wiredRate = state.values["wiredRate"].flatMap(Double.init)
        optimizer.learningRate = nextRate()
    }
}

/// Adam (Kingma and Ba), PyTorch's update rule; L2 weight decay added to the gradient.
public enum AdamRecipe: OptimizerRecipe {
    public static let typeName = "optimizer.adam"
    public static let summary = "Adam (PyTorch's rule, L2 weight decay)."
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

/// AdamW (Loshchilov and Hutter), PyTorch's rule: decoupled weight decay `p *= 1 - lr * weightDecay`.
public enum AdamWRecipe: OptimizerRecipe {
    public static let typeName = "optimizer.adamw"
    public static let summary = "AdamW (PyTorch's rule, decoupled weight decay)."
    public static let keys: [ConfigKey] = [
        ConfigKey("lr", .number(min: 0), default: .number(0.0002), "Learning rate."),
        ConfigKey("betas", .numberList(count: 2), default: .array([.number(0.5), .number(0.999)]), "Coefficients of the running averages of the gradient and its square."),
        ConfigKey("eps", .number(min: 0), default: .number(1e-8), "Added to the denominator."),
        ConfigKey("weightDecay", .number(min: 0), default: .number(0.01), "Decoupled weight decay (PyTorch's default 0.01)."),
    ]
    public static func make(_ parameters: [(String, Tensor)], _ config: StageConfig) throws -> any Optimizer {
        let b = config.doubles("betas")
        return try AdamW(parameters: parameters.map { (name: $0.0, tensor: $0.1) }, learningRate: config.double("lr"),
                         beta1: b[0], beta2: b[1], eps: config.double("eps"), weightDecay: config.double("weightDecay"))
    }
}

/// Stochastic gradient descent, `torch.optim.SGD`'s rule.
public enum SGDRecipe: OptimizerRecipe {
    public static let typeName = "optimizer.sgd"
    public static let summary = "SGD with momentum, dampening and Nesterov momentum (PyTorch's rule)."
    public static let keys: [ConfigKey] = [
        ConfigKey("lr", .number(min: 0), default: .number(0.01), "Learning rate."),
        ConfigKey("momentum", .number(min: 0), default: .number(0), "Momentum factor (0: plain SGD)."),
        ConfigKey("dampening", .number(min: 0, max: 1), default: .number(0), "Dampening of the momentum."),
        ConfigKey("nesterov", .bool, default: .bool(false), "Nesterov momentum (needs momentum > 0 and dampening 0)."),
        ConfigKey("weightDecay", .number(min: 0), default: .number(0), "L2 penalty added to the gradient."),
    ]
    public static func make(_ parameters: [(String, Tensor)], _ config: StageConfig) throws -> any Optimizer {
        try SGD(parameters: parameters.map { (name: $0.0, tensor: $0.1) }, learningRate: config.double("lr"),
                momentum: config.double("momentum"), dampening: config.double("dampening"), nesterov: config.bool("nesterov"),
                weightDecay: config.double("weightDecay"))
    }
}

/// RMSprop, `torch.optim.RMSprop`'s rule (the WGAN paper's optimizer).
public enum RMSpropRecipe: OptimizerRecipe {
    public static let typeName = "optimizer.rmsprop"
    public static let summary = "RMSprop, optionally centered and with momentum (PyTorch's rule)."
    public static let keys: [ConfigKey] = [
        ConfigKey("lr", .number(min: 0), default: .number(0.00005), "Learning rate."),
        ConfigKey("alpha", .number(min: 0, max: 1), default: .number(0.99), "Smoothing constant of the squared-gradient average."),
        ConfigKey("eps", .number(min: 0), default: .number(1e-8), "Added to the denominator."),
        ConfigKey("momentum", .number(min: 0), default: .number(0), "Momentum factor."),
        ConfigKey("centered", .bool, default: .bool(false), "Normalise by the gradient's estimated variance instead of its second moment."),
        ConfigKey("weightDecay", .number(min: 0), default: .number(0), "L2 penalty added to the gradient."),
    ]
    public static func make(_ parameters: [(String, Tensor)], _ config: StageConfig) throws -> any Optimizer {
        try RMSprop(parameters: parameters.map { (name: $0.0, tensor: $0.1) }, learningRate: config.double("lr"),
                    alpha: config.double("alpha"), eps: config.double("eps"), weightDecay: config.double("weightDecay"),
                    momentum: config.double("momentum"), centered: config.bool("centered"))
    }
}

extension OptimizerState {
    /// Hands the optimizer's part of a stage checkpoint (its tensors and the integer values under
    /// `prefix`) to `importState`; a state it refuses becomes a problem of the stage.
    static func restore(
        from state: StageState, prefix: String, into importState: (OptimizerState, String) throws -> Void
    ) throws {
        var ints: [String: Int] = [:]
        for (k, v) in state.values where k.hasPrefix(prefix) { ints[k] = Int(v) }
        do {
            try importState(OptimizerState(tensors: state.tensors, integers: ints), prefix)
        } catch {
            throw StageProblem("\(error)")
        }
    }
}

/// Whether `text` matches the shell pattern `pattern` ('*' for any run of characters).
func globMatches(_ pattern: String, _ text: String) -> Bool {
    fnmatch(pattern, text, 0) == 0
}
