import Foundation
import GANFlowTestSupport
import Testing
import NeuralNet
import TensorRuntime

/// One recorded PyTorch run from Fixtures/golden/optimizers.json (Scripts/golden/optimizers.py).
struct GoldenCase: CustomTestStringConvertible, Sendable {
    let name: String
    let optimizer: String
    let options: [String: Double]
    let betas: [Double]?
    let nesterov: Bool
    let centered: Bool
    let stepLR: (stepSize: Int, gamma: Double)?
    let learningRates: [Double]
    /// parameters[step][parameter] after that step.
    let parameters: [[[Float]]]
    var testDescription: String { name }

    /// The learning-rate schedule the PyTorch run used (StepLR or none).
    func schedule() throws -> LearningRateSchedule {
        try LearningRateSchedule(
            baseRate: options["lr"]!, kind: stepLR.map { .step(stepSize: $0.stepSize, gamma: $0.gamma) } ?? .constant)
    }
}

struct GoldenOptimizerRuns: Sendable {
    let names: [String]
    let shapes: [[Int]]
    let initial: [[Float]]
    let gradients: [[[Float]]]
    let cases: [GoldenCase]

    static let shared: GoldenOptimizerRuns = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/golden/optimizers.json")
        let root = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        func floats(_ any: Any) -> [Float] { (any as! [Double]).map(Float.init) }
        let cases = (root["cases"] as! [[String: Any]]).map { c -> GoldenCase in
            let raw = c["options"] as! [String: Any]
            let step = c["stepLR"] as? [String: Any]
            return GoldenCase(
                name: c["name"] as! String, optimizer: c["optimizer"] as! String,
                options: raw.filter { !["betas", "nesterov", "centered"].contains($0.key) }.mapValues { $0 as! Double },
                betas: raw["betas"] as? [Double], nesterov: raw["nesterov"] as? Bool ?? false,
                centered: raw["centered"] as? Bool ?? false,
                stepLR: step.map { ($0["stepSize"] as! Int, $0["gamma"] as! Double) },
                learningRates: c["learningRates"] as! [Double],
                parameters: (c["parameters"] as! [[Any]]).map { $0.map(floats) })
        }
        return GoldenOptimizerRuns(
            names: root["names"] as! [String], shapes: root["shapes"] as! [[Int]],
            initial: (root["initial"] as! [Any]).map(floats),
            gradients: (root["gradients"] as! [[Any]]).map { $0.map(floats) }, cases: cases)
    }()

    func freshParameters() throws -> [(name: String, tensor: Tensor)] {
        try zip(names, zip(shapes, initial)).map { ($0, try Tensor(shape: $1.0, scalars: $1.1)) }
    }

    func gradients(atStep step: Int) throws -> [Tensor] {
        try zip(shapes, gradients[step]).map { try Tensor(shape: $0, scalars: $1) }
    }
}

/// Builds the optimizer a golden case describes.
func makeOptimizer(_ c: GoldenCase, _ parameters: [(name: String, tensor: Tensor)]) throws -> any Optimizer {
    let o = c.options
    let lr = o["lr"]!
    switch c.optimizer {
    case "sgd":
        return try SGD(parameters: parameters, learningRate: lr, momentum: o["momentum"] ?? 0,
                       dampening: o["dampening"] ?? 0, nesterov: c.nesterov, weightDecay: o["weight_decay"] ?? 0)
    case "adam":
        return try Adam(parameters: parameters, learningRate: lr, beta1: c.betas?[0] ?? 0.9, beta2: c.betas?[1] ?? 0.999,
                        eps: o["eps"] ?? 1e-8, weightDecay: o["weight_decay"] ?? 0)
    case "adamw":
        return try AdamW(parameters: parameters, learningRate: lr, beta1: c.betas?[0] ?? 0.9, beta2: c.betas?[1] ?? 0.999,
                         eps: o["eps"] ?? 1e-8, weightDecay: o["weight_decay"] ?? 0.01)
    case "rmsprop":
        return try RMSprop(parameters: parameters, learningRate: lr, alpha: o["alpha"] ?? 0.99, eps: o["eps"] ?? 1e-8,
                           weightDecay: o["weight_decay"] ?? 0, momentum: o["momentum"] ?? 0, centered: c.centered)
    default:
        fatalError("unknown optimizer \(c.optimizer) in golden file")
    }
}

/// The largest of |got - expected| / max(|expected|, 1e-3) over all values.
func worstRelativeError(_ got: [Float], _ expected: [Float]) -> Float {
    largestDifference(got, expected, relativeTo: 1e-3)
}

@Suite struct OptimizerGoldenTests {
    @Test func goldenFileCoversEveryOptimizer() {
        let kinds = Set(GoldenOptimizerRuns.shared.cases.map(\.optimizer))
        #expect(kinds == ["sgd", "adam", "adamw", "rmsprop"])
        #expect(GoldenOptimizerRuns.shared.cases.allSatisfy { $0.parameters.count == 5 })
    }

    @Test(arguments: GoldenOptimizerRuns.shared.cases)
    func matchesPyTorchStepByStep(_ c: GoldenCase) throws {
        let runs = GoldenOptimizerRuns.shared
        let parameters = try runs.freshParameters()
        let optimizer = try makeOptimizer(c, parameters)
        let schedule = try c.schedule()
        for step in 0..<c.parameters.count {
            schedule.apply(to: optimizer)
            #expect(abs(optimizer.learningRate - c.learningRates[step]) <= 1e-12 * c.learningRates[step], "step \(step)")
            try optimizer.step(gradients: runs.gradients(atStep: step))
            for (k, p) in parameters.enumerated() {
                let error = worstRelativeError(p.tensor.scalars, c.parameters[step][k])
                #expect(error <= 1e-6, "\(c.name) step \(step + 1) \(p.name): relative error \(error)")
            }
        }
        #expect(optimizer.stepCount == c.parameters.count)
    }

    /// Guards against a replay that cannot fail: the cases must actually move the parameters,
    /// and differently from one another.
    @Test func casesAreDistinguishable() {
        let runs = GoldenOptimizerRuns.shared
        let finals = runs.cases.map { $0.parameters.last!.flatMap { $0 } }
        for f in finals { #expect(worstRelativeError(f, runs.initial.flatMap { $0 }) > 1e-4) }
        for i in finals.indices {
            for j in finals.indices where j > i {
                #expect(worstRelativeError(finals[i], finals[j]) > 1e-5, "\(runs.cases[i].name) vs \(runs.cases[j].name)")
            }
        }
    }
}
