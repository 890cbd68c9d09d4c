import TensorRuntime

/// Limited-memory BFGS (Nocedal and Wright, *Numerical Optimization*, algorithms 7.4 and 7.5) with a
/// strong-Wolfe or backtracking line search.
///
/// Unlike the first-order optimizers it needs the loss at several points per step, so it does not
/// take gradients but a function: `step(start:iterations:evaluate:)` writes trial points into the
/// parameters and calls `evaluate`, which returns the loss and gradient there. `evaluate` may
/// change the parameters it is given (a projection such as clamping an image to [0, 1]); the
/// optimizer reads them back after every call and works with the point actually evaluated.
///
/// History vectors are kept in Float (as PyTorch does); inner products accumulate in Double.
public final class LBFGS {
    public enum LineSearch: String, Sendable, CaseIterable {
        /// Nocedal and Wright's algorithms 3.5 and 3.6 (bracketing, then zooming with safeguarded
        /// cubic interpolation) for the strong Wolfe conditions.
        case strongWolfe
        /// Armijo backtracking with safeguarded quadratic interpolation.
        case backtracking
        /// A fixed step of `learningRate` along the direction.
        case none
    }

    /// What one call of `step` did.
    public struct StepResult: Sendable, Equatable {
        /// The loss at the point the step ended at.
        public var loss: Double
        /// Calls of `evaluate`.
        public var evaluations: Int
        /// Iterations taken (fewer than asked when a tolerance was met).
        public var iterations: Int
        /// Whether the gradient or the progress fell below the tolerances.
        public var converged: Bool
    }

    public let parameters: [(name: String, tensor: Tensor)]
    /// Scales the step tried first along each direction (1 is the natural step of quasi-Newton methods).
    public var learningRate: Double
    public let historySize: Int
    public let lineSearch: LineSearch
    /// Stop when the largest gradient component is at most this.
    public var toleranceGrad: Double
    /// Stop when the loss or the parameters change by at most this in an iteration.
    public var toleranceChange: Double
    /// Evaluations a line search may use.
    public var maxLineSearchEvaluations: Int
    /// Sufficient decrease (c1) and curvature (c2) constants of the Wolfe conditions.
    public var c1 = 1e-4, c2 = 0.9
    public private(set) var stepCount = 0
    /// The loss and gradient at the point the last step ended at, for reuse by the next step.
    public private(set) var lastEvaluation: (loss: Double, gradient: [Float])?

    var s: [[Float]] = []
    var y: [[Float]] = []
    var rho: [Double] = []

    public init(parameters: [(name: String, tensor: Tensor)], learningRate: Double = 1, historySize: Int = 10,
                lineSearch: LineSearch = .strongWolfe, toleranceGrad: Double = 1e-7, toleranceChange: Double = 1e-9,
                maxLineSearchEvaluations: Int = 25) throws {
        guard !parameters.isEmpty else { throw OptimizerError("lbfgs: no parameters") }
        guard learningRate > 0, learningRate.isFinite else { throw OptimizerError("lbfgs: learning rate \(learningRate) must be positive") }
        guard historySize >= 1 else { throw OptimizerError("lbfgs: history size \(historySize) must be at least 1") }
        guard maxLineSearchEvaluations >= 1 else { throw OptimizerError("lbfgs: a line search needs at least one evaluation") }
        for (name, t) in parameters where !t.isContiguous {
            throw OptimizerError("lbfgs: parameter '\(name)' is not contiguous")
        }
        self.parameters = parameters
        self.learningRate = learningRate
        self.historySize = historySize
        self.lineSearch = lineSearch
        self.toleranceGrad = toleranceGrad
        self.toleranceChange = toleranceChange
        self.maxLineSearchEvaluations = maxLineSearchEvaluations
    }

    /// Number of scalars over all parameters.
    public var count: Int { parameters.reduce(0) { $0 + $1.tensor.count } }

    /// Pairs (s, y) currently in the history.
    public var historyCount: Int { s.count }

    /// Runs up to `iterations` iterations from the parameters' current values.
    ///
    /// `start` is the loss and gradient at the current point when the caller has them (as a
    /// pipeline evaluation does); otherwise `evaluate` is called for them first.
    public func step(start: (loss: Double, gradient: [Float])? = nil, iterations: Int = 1,
                     evaluate: () throws -> (loss: Double, gradient: [Float])) throws -> StepResult {
        var evaluations = 0
        func call() throws -> (Double, [Float]) {
            evaluations += 1
            let r = try evaluate()
            guard r.gradient.count == count else {
                throw OptimizerError("lbfgs: the gradient has \(r.gradient.count) values for \(count) parameters")
            }
            return r
        }
        var (f, g) = try start ?? call()
        var x = read()
        var done = 0
        var converged = false
        while done < iterations {
            if maxAbs(g) <= toleranceGrad { converged = true; break }
            let d = direction(g)
            let gtd = dot(g, d)
            if gtd > -toleranceChange {
                // Not a descent direction (a stale history after a projection): start afresh.
                if s.isEmpty { converged = true; break }
                s.removeAll(); y.removeAll(); rho.removeAll()
                continue
            }
            // The first step is scaled to the gradient's size, later ones trust the curvature model.
            let t0 = s.isEmpty && stepCount == 0 ? min(1, 1 / sumAbs(g)) * learningRate : learningRate
            let point = try search(x: x, f: f, g: g, d: d, gtd: gtd, t0: t0, evaluate: call)
            var sk = [Float](repeating: 0, count: x.count), yk = sk
            for i in 0..<x.count {
                sk[i] = point.x[i] - x[i]
                yk[i] = point.g[i] - g[i]
            }
            let ys = dot(yk, sk)
            if ys > 1e-10 {
                if s.count == historySize { s.removeFirst(); y.removeFirst(); rho.removeFirst() }
                s.append(sk); y.append(yk); rho.append(1 / ys)
            }
            let change = abs(point.f - f)
            f = point.f; g = point.g; x = point.x
            write(x)
            stepCount += 1
            done += 1
            if change < toleranceChange || maxAbs(sk) <= toleranceChange { converged = true; break }
        }
        lastEvaluation = (f, g)
        return StepResult(loss: f, evaluations: evaluations, iterations: done, converged: converged)
    }

    /// -H g by the two-loop recursion, H0 scaled by s'y / y'y of the newest pair.
    func direction(_ g: [Float]) -> [Float] {
        var q = g.map { -Double($0) }
        var alpha = [Double](repeating: 0, count: s.count)
        for i in stride(from: s.count - 1, through: 0, by: -1) {
            alpha[i] = rho[i] * dot(s[i], q)
            axpy(-alpha[i], y[i], &q)
        }
        if let yl = y.last {
            let gamma = 1 / (rho[rho.count - 1] * dot(yl, yl))
            for i in 0..<q.count { q[i] *= gamma }
        }
        for i in 0..<s.count {
            let beta = rho[i] * dot(y[i], q)
            axpy(alpha[i] - beta, s[i], &q)
        }
        return q.map { Float($0) }
    }

    /// A point on the line tried by the search.
    struct Point {
        var t: Double
        var f: Double
        var g: [Float]
        var x: [Float]
        var gtd: Double
    }

    func search(x: [Float], f: Double, g: [Float], d: [Float], gtd: Double, t0: Double,
                evaluate: () throws -> (Double, [Float])) throws -> Point {
        var used = 0
        func at(_ t: Double) throws -> Point {
            used += 1
            var trial = x
            for i in 0..<trial.count { trial[i] = Float(Double(x[i]) + t * Double(d[i])) }
            write(trial)
            let (ft, gt) = try evaluate()
            let actual = read()
            return Point(t: t, f: ft, g: gt, x: actual, gtd: dot(gt, d))
        }
        let origin = Point(t: 0, f: f, g: g, x: x, gtd: gtd)
        func sufficient(_ p: Point) -> Bool { p.f <= f + c1 * p.t * gtd }

        switch lineSearch {
        case .none:
            return try at(t0)
        case .backtracking:
            var p = try at(t0)
            while !sufficient(p) || !p.f.isFinite, used < maxLineSearchEvaluations {
                // Minimiser of the quadratic through f(0), f'(0) and f(t), kept within [0.1 t, 0.5 t].
                let q = -gtd * p.t * p.t / (2 * (p.f - f - gtd * p.t))
                let t = q.isFinite ? min(max(q, 0.1 * p.t), 0.5 * p.t) : 0.5 * p.t
                p = try at(t)
            }
            return sufficient(p) ? p : origin
        case .strongWolfe:
            var previous = origin
            var t = t0
            var bracket: (lo: Point, hi: Point)?
            while used < maxLineSearchEvaluations {
                let p = try at(t)
                if !sufficient(p) || !p.f.isFinite || (previous.t > 0 && p.f >= previous.f) {
                    bracket = (previous, p)
                    break
                }
                if abs(p.gtd) <= -c2 * gtd { return p }
                if p.gtd >= 0 {
                    bracket = (p, previous)
                    break
                }
                // Extrapolate: the cubic's minimiser, kept within [t + 0.01 (t - t_prev), 10 t].
                let next = cubicMinimizer(previous, p, within: (t + 0.01 * (t - previous.t), 10 * t))
                previous = p
                t = next
            }
            guard var (lo, hi) = bracket else { return previous.t > 0 ? previous : origin }
            let dmax = maxAbs(d)
            while used < maxLineSearchEvaluations, abs(hi.t - lo.t) * dmax > toleranceChange {
                let a = min(lo.t, hi.t), b = max(lo.t, hi.t)
                // Stay at least a tenth of the interval away from its ends, so it keeps shrinking.
                let margin = 0.1 * (b - a)
                var t = hi.f.isFinite ? cubicMinimizer(lo, hi, within: (a, b)) : (a + b) / 2
                t = min(max(t, a + margin), b - margin)
                let p = try at(t)
                if !sufficient(p) || !p.f.isFinite || p.f >= lo.f {
                    hi = p
                } else {
                    if abs(p.gtd) <= -c2 * gtd { return p }
                    if p.gtd * (hi.t - lo.t) >= 0 { hi = lo }
                    lo = p
                }
            }
            return lo.t > 0 ? lo : origin
        }
    }

    /// The minimiser of the cubic matching values and slopes at two points, clamped to `within`;
    /// the midpoint of `within` when the cubic has no minimiser.
    func cubicMinimizer(_ p1: Point, _ p2: Point, within bounds: (Double, Double)) -> Double {
        let lo = min(bounds.0, bounds.1), hi = max(bounds.0, bounds.1)
        let d1 = p1.gtd + p2.gtd - 3 * (p1.f - p2.f) / (p1.t - p2.t)
        let square = d1 * d1 - p1.gtd * p2.gtd
        guard square >= 0, p1.t != p2.t else { return (lo + hi) / 2 }
        let d2 = (p2.t > p1.t ? 1.0 : -1.0) * square.squareRoot()
        let t = p2.t - (p2.t - p1.t) * (p2.gtd + d2 - d1) / (p2.gtd - p1.gtd + 2 * d2)
        guard t.isFinite else { return (lo + hi) / 2 }
        return min(max(t, lo), hi)
    }

    // MARK: - flat vectors over the parameters

    /// The parameters' values, concatenated.
    public func read() -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(count)
        for (_, t) in parameters { out += UnsafeBufferPointer(start: t.data, count: t.count) }
        return out
    }

    /// Writes concatenated values into the parameters.
    public func write(_ values: [Float]) {
        var offset = 0
        values.withUnsafeBufferPointer { v in
            for (_, t) in parameters {
                t.data.update(from: v.baseAddress! + offset, count: t.count)
                offset += t.count
            }
        }
    }

    /// The history as named tensors (`<prefix>.s.<i>`, `<prefix>.y.<i>`, oldest first) and the
    /// step count, for checkpoints.
    public func exportState(prefix: String) -> OptimizerState {
        var tensors: [String: Tensor] = [:]
        for i in 0..<s.count {
            tensors["\(prefix).s.\(i)"] = try! Tensor(shape: [count], scalars: s[i])
            tensors["\(prefix).y.\(i)"] = try! Tensor(shape: [count], scalars: y[i])
        }
        return OptimizerState(tensors: tensors, integers: ["\(prefix).step": stepCount, "\(prefix).history": s.count])
    }

    /// Restores what `exportState` saved.
    public func importState(_ state: OptimizerState, prefix: String) throws {
        guard let steps = state.integers["\(prefix).step"], let n = state.integers["\(prefix).history"],
              (0...historySize).contains(n) else {
            throw OptimizerError("lbfgs: the saved state has no valid '\(prefix).step' and '\(prefix).history'")
        }
        var s: [[Float]] = [], y: [[Float]] = [], rho: [Double] = []
        for i in 0..<n {
            guard let si = state.tensors["\(prefix).s.\(i)"], let yi = state.tensors["\(prefix).y.\(i)"] else {
                throw OptimizerError("lbfgs: the saved state has no '\(prefix).s.\(i)' or '\(prefix).y.\(i)'")
            }
            guard si.count == count, yi.count == count else {
                throw OptimizerError("lbfgs: saved history pair \(i) has \(si.count) values, expected \(count)")
            }
            s.append(si.scalars)
            y.append(yi.scalars)
            rho.append(1 / dot(y[i], s[i]))
        }
        self.s = s; self.y = y; self.rho = rho
        stepCount = steps
        lastEvaluation = nil
    }

    /// Forgets the history, the step count and the cached evaluation.
    public func resetState() {
        s.removeAll(); y.removeAll(); rho.removeAll()
        stepCount = 0
        lastEvaluation = nil
    }
}

private func dot(_ a: [Float], _ b: [Float]) -> Double {
    var total = 0.0
    for i in 0..<a.count { total += Double(a[i]) * Double(b[i]) }
    return total
}

private func dot(_ a: [Float], _ b: [Double]) -> Double {
    var total = 0.0
    for i in 0..<a.count { total += Double(a[i]) * b[i] }
    return total
}

private func axpy(_ alpha: Double, _ x: [Float], _ y: inout [Double]) {
    for i in 0..<y.count { y[i] += alpha * Double(x[i]) }
}

private func maxAbs(_ v: [Float]) -> Double { Double(v.reduce(0) { max($0, abs($1)) }) }

private func sumAbs(_ v: [Float]) -> Double { v.reduce(0) { $0 + Double(abs($1)) } }
