import Testing
import NeuralNet
import TensorRuntime

@Suite struct LBFGSTests {
    /// The n-dimensional Rosenbrock function sum 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2 and its
    /// gradient, in Double from the parameter's Float values.
    static func rosenbrock(_ p: Tensor) -> (loss: Double, gradient: [Float]) {
        let x = p.scalars.map(Double.init)
        var f = 0.0
        var g = [Double](repeating: 0, count: x.count)
        for i in 0..<(x.count - 1) {
            let a = x[i + 1] - x[i] * x[i], b = 1 - x[i]
            f += 100 * a * a + b * b
            g[i] += -400 * a * x[i] - 2 * b
            g[i + 1] += 200 * a
        }
        return (f, g.map(Float.init))
    }

    func minimise(_ start: [Float], lineSearch: LBFGS.LineSearch, iterations: Int) throws -> (x: [Float], result: LBFGS.StepResult) {
        let p = try Tensor(shape: [start.count], scalars: start)
        let opt = try LBFGS(parameters: [("x", p)], historySize: 10, lineSearch: lineSearch, toleranceGrad: 1e-6, toleranceChange: 1e-12)
        let r = try opt.step(iterations: iterations) { Self.rosenbrock(p) }
        return (p.scalars, r)
    }

    @Test(arguments: [LBFGS.LineSearch.strongWolfe, .backtracking])
    func minimisesRosenbrockFromTheClassicStart(lineSearch: LBFGS.LineSearch) throws {
        let (x, r) = try minimise([-1.2, 1], lineSearch: lineSearch, iterations: 500)
        #expect(abs(x[0] - 1) < 1e-3 && abs(x[1] - 1) < 1e-3, "ended at \(x) after \(r.iterations) iterations")
        #expect(r.loss < 1e-6)
    }

    @Test func strongWolfeMinimisesTenDimensionalRosenbrockInFewIterations() throws {
        let start: [Float] = [-1.2, 1, -1.2, 1, -1.2, 1, -1.2, 1, -1.2, 1]
        let (x, r) = try minimise(start, lineSearch: .strongWolfe, iterations: 200)
        #expect(x.allSatisfy { abs($0 - 1) < 1e-3 }, "ended at \(x)")
        // Gradient descent needs thousands of iterations here; the curvature model needs well under 200.
        #expect(r.iterations < 200)
        #expect(r.evaluations < 2 * r.iterations + 20, "the unit step is usually accepted")
    }

    @Test func aFixedStepWithoutLineSearchTakesOneEvaluationPerIteration() throws {
        let p = try Tensor(shape: [2], scalars: [3, -2])
        let opt = try LBFGS(parameters: [("x", p)], learningRate: 1, lineSearch: .none)
        // A convex quadratic (x - 1)^2 + 10 (y + 1)^2.
        let r = try opt.step(iterations: 20) {
            let v = p.scalars.map(Double.init)
            return ((v[0] - 1) * (v[0] - 1) + 10 * (v[1] + 1) * (v[1] + 1), [Float(2 * (v[0] - 1)), Float(20 * (v[1] + 1))])
        }
        #expect(r.evaluations == r.iterations + 1)
        #expect(abs(p.scalars[0] - 1) < 1e-4 && abs(p.scalars[1] + 1) < 1e-4)
    }

    @Test func worksWithTheProjectionTheEvaluationApplies() throws {
        // Minimise (x - 2)^2 + (y + 3)^2 over the box [0, 1]^2, clamping inside the evaluation as
        // the image stage does: the optimizer must end on the box's corner (1, 0).
        let p = try Tensor(shape: [2], scalars: [0.5, 0.5])
        let opt = try LBFGS(parameters: [("x", p)])
        _ = try opt.step(iterations: 30) {
            for i in 0..<2 { p.data[i] = min(max(p.data[i], 0), 1) }
            let v = p.scalars.map(Double.init)
            return ((v[0] - 2) * (v[0] - 2) + (v[1] + 3) * (v[1] + 3), [Float(2 * (v[0] - 2)), Float(2 * (v[1] + 3))])
        }
        #expect(p.scalars == [1, 0])
    }

    @Test func resumingFromExportedStateContinuesIdentically() throws {
        let start: [Float] = [-1.2, 1, -1.2, 1]
        let a = try Tensor(shape: [4], scalars: start)
        let straight = try LBFGS(parameters: [("x", a)], historySize: 5)
        for _ in 0..<12 { _ = try straight.step { Self.rosenbrock(a) } }

        let b = try Tensor(shape: [4], scalars: start)
        let first = try LBFGS(parameters: [("x", b)], historySize: 5)
        for _ in 0..<7 { _ = try first.step { Self.rosenbrock(b) } }
        let state = first.exportState(prefix: "lbfgs")
        #expect(state.integers["lbfgs.step"] == 7 && state.integers["lbfgs.history"] == 5)
        let second = try LBFGS(parameters: [("x", b)], historySize: 5)
        try second.importState(state, prefix: "lbfgs")
        for _ in 0..<5 { _ = try second.step { Self.rosenbrock(b) } }
        #expect(a.scalars == b.scalars)
    }

    @Test func rejectsABadConfiguration() throws {
        let p = Tensor(zeros: [2])
        #expect(throws: OptimizerError("lbfgs: history size 0 must be at least 1")) {
            try LBFGS(parameters: [("x", p)], historySize: 0)
        }
        #expect(throws: OptimizerError("lbfgs: the gradient has 3 values for 2 parameters")) {
            try LBFGS(parameters: [("x", p)]).step { (0, [1, 2, 3]) }
        }
    }
}
