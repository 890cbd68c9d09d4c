import NeuralNet
import PipelineGraph
import TensorRuntime

/// L-BFGS on one stage's parameters, with a line search that evaluates the loss at several points.
///
///     "opt": { "type": "optimizer.lbfgs", "minimize": "loss.loss", "parameters": "X", "historySize": 20 }
///
/// A step of the pipeline is `iterations` L-BFGS iterations. The gradient at the start point is
/// taken from the phase's evaluation; each trial point of the line search writes the parameters
/// and has the evaluator recompute the loss (`Evaluation.recompute`), which re-runs only the
/// stages that depend on those parameters. The parameters are left at the accepted point, and
/// the loss and gradient there are reused by the next step when the loss agrees exactly.
/// Output `evaluations` counts loss evaluations so far (phase evaluations and line-search trials).
public final class LBFGSOptimizerStage: CommittingStage, @unchecked Sendable {
    public static let typeName = "optimizer.lbfgs"
    public static let summary = "L-BFGS with a strong-Wolfe or backtracking line search; outputs 'update' and 'evaluations'."
    public static let configKeys: [ConfigKey] = [
        ConfigKey("minimize", .wire, "The scalar loss to minimise."),
        ConfigKey("parameters", .stageRef, "The stage whose parameters this optimizer updates."),
        ConfigKey("lr", .number(min: 0), default: .number(1), "Scale of the first step tried along each direction (1: the quasi-Newton step)."),
        ConfigKey("historySize", .int(min: 1, max: 1000), default: .number(20), "Pairs of updates kept to model the curvature."),
        ConfigKey("lineSearch", .string(choices: LBFGS.LineSearch.allCases.map(\.rawValue)), default: .string("strongWolfe"), "How the step length is chosen."),
        ConfigKey("iterations", .int(min: 1, max: 10000), default: .number(1), "L-BFGS iterations per pipeline step."),
        ConfigKey("maxEvaluations", .int(min: 1, max: 1000), default: .number(25), "Loss evaluations a line search may use."),
        ConfigKey("toleranceGrad", .number(min: 0), default: .number(1e-7), "Stop iterating when no gradient component is larger."),
        ConfigKey("toleranceChange", .number(min: 0), default: .number(1e-9), "Stop iterating when the loss or the parameters change less."),
    ]

    public let outputs: [String: PortType] = ["update": .effect, "evaluations": .scalar]
    let optimizer: LBFGS
    let targetID: String
    let iterations: Int
    var pending: (loss: Double, gradient: [Float], recompute: @Sendable (Set<String>) throws -> [String: PortValue])?
    var evaluations = 0

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        guard inputs["minimize"] == .scalar else {
            throw StageProblem(key: "minimize", "expected a scalar loss, found \(inputs["minimize"]!)")
        }
        targetID = config.string("parameters")
        let params = context.stage(targetID)?.parameters ?? []
        if params.isEmpty {
            throw StageProblem(key: "parameters", "stage '\(targetID)' has no trainable parameters")
        }
        do {
            optimizer = try LBFGS(parameters: params.map { (name: $0.0, tensor: $0.1) }, learningRate: config.double("lr"),
                                  historySize: config.int("historySize"),
                                  lineSearch: LBFGS.LineSearch(rawValue: config.string("lineSearch"))!,
                                  toleranceGrad: config.double("toleranceGrad"), toleranceChange: config.double("toleranceChange"),
                                  maxLineSearchEvaluations: config.int("maxEvaluations"))
        } catch let e as OptimizerError {
            throw StageProblem(key: "lr", e.message)
        }
        iterations = config.int("iterations")
    }

    public func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        guard let recompute = e.recompute else {
            throw StageProblem("optimizer.lbfgs needs an evaluator that can recompute its loss (Evaluation.recompute)")
        }
        let loss = try e.tensor("minimize")
        let value = Double(loss.item())
        evaluations += 1
        let gradient: [Float]
        if let last = optimizer.lastEvaluation, last.loss == value {
            // The previous step's line search ended at this point and took this gradient there.
            gradient = last.gradient
        } else {
            gradient = try flatten(gradients(of: loss, wrt: optimizer.parameters.map(\.tensor)))
        }
        pending = (value, gradient, recompute)
        return ["update": .effect, "evaluations": .scalar(Tensor(Float(evaluations)))]
    }

    public func commit() throws {
        guard let p = pending else { return }
        pending = nil
        guard p.loss.isFinite else { return }
        let params = optimizer.parameters.map(\.tensor)
        let result = try optimizer.step(start: (p.loss, p.gradient), iterations: iterations) {
            guard let loss = try p.recompute([targetID])["minimize"]?.tensor else {
                throw StageProblem(key: "minimize", "recomputing the loss gave no value")
            }
            return (Double(loss.item()), try flatten(gradients(of: loss, wrt: params)))
        }
        evaluations += result.evaluations
    }

    func flatten(_ tensors: [Tensor]) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(optimizer.count)
        for t in tensors { out += t.scalars }
        return out
    }

    public func checkpointState() throws -> StageState {
        let s = optimizer.exportState(prefix: "lbfgs")
        var values = s.integers.mapValues(String.init)
        values["evaluations"] = String(evaluations)
        return StageState(tensors: s.tensors, values: values)
    }

    public func restore(_ state: StageState) throws {
        try OptimizerState.restore(from: state, prefix: "lbfgs", into: optimizer.importState)
        evaluations = state.values["evaluations"].flatMap(Int.init) ?? 0
    }
}
