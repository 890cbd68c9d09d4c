#if canImport(Glibc)
import Glibc
#endif

/// Elementwise functions of one tensor.
///
/// Each forward is one pointer loop over contiguous data (`map`); tanh of a large tensor (a
/// generator's output) runs on oneDNN's vectorised kernel instead (`EltwisePrimitives`). Backward rules are tensor
/// expressions, so they can be differentiated again; when the backward pass is not recorded
/// (first-order gradients), the same arithmetic runs as one fused loop instead, with the same
/// result bit for bit. Rules that need the op's own output (exp,
/// sigmoid, tanh, sqrt) hold it through `recordUsingOutput`, which avoids a reference cycle between
/// a tensor and its `GradFn`. Piecewise-constant derivatives (relu, leaky relu, abs, clamp) are
/// constant mask tensors computed from the input when the backward runs, so the gradient stays
/// linear in, and differentiable with respect to, the incoming gradient.
extension Tensor {
    /// Records `result` with a backward rule that receives `result` itself as its second argument.
    ///
    /// The rule captures the output unowned: `gradients(of:wrt:)` keeps every tensor of the graph
    /// alive while it runs the rules, and a strong capture would leak the output and its graph.
    @inline(__always)
    static func recordUsingOutput(
        _ result: Tensor, _ name: String, _ inputs: [Tensor],
        backward: @escaping (Tensor, Tensor, [Bool]) throws -> [Tensor?]
    ) -> Tensor {
        record(result, name, inputs) { [unowned result] g, need in try backward(g, result, need) }
    }

    /// e^x.
    public func exp() -> Tensor {
        let out = Profiler.measure("exp") { map { expf($0) } }
        return Tensor.recordUsingOutput(out, "exp", [self]) { g, y, _ in [try g * y] }
    }

    /// Natural logarithm; log(0) is -inf and log of a negative number is NaN, as in PyTorch.
    public func log() -> Tensor {
        let out = Profiler.measure("log") { map { logf($0) } }
        return Tensor.record(out, "log", [self]) { g, _ in [try g / self] }
    }

    /// Hyperbolic tangent.
    public func tanh() -> Tensor {
        let out = Profiler.measure("tanh") { (try? EltwisePrimitives.run(self, .tanh)) ?? map { tanhf($0) } }
        return Tensor.recordUsingOutput(out, "tanh", [self]) { g, y, _ in
            if !GradMode.isEnabled { return [try Tensor.zipMap(g, y) { g, y in g * (1 - y * y) }] }
            return [try g * (1 - (try y * y))]
        }
    }

    /// The logistic function 1 / (1 + e^-x), computed without overflow for large |x|.
    public func sigmoid() -> Tensor {
        let out = Profiler.measure("sigmoid") {
            map { x in
                // e^-|x| never overflows; the two branches are the same function rearranged.
                let e = expf(-Swift.abs(x))
                let r = 1 / (1 + e)
                return x >= 0 ? r : e * r
            }
        }
        return Tensor.recordUsingOutput(out, "sigmoid", [self]) { g, y, _ in
            if !GradMode.isEnabled { return [try Tensor.zipMap(g, y) { g, y in g * (y * (1 - y)) }] }
            return [try g * (try y * (1 - y))]
        }
    }

    /// max(x, 0). NaN stays NaN.
    public func relu() -> Tensor {
        let out = Profiler.measure("relu") { map { $0 < 0 ? 0 : $0 } }
        return Tensor.record(out, "relu", [self]) { g, _ in
            if !GradMode.isEnabled { return [try Tensor.zipMap(g, self) { g, x in g * (x > 0 ? 1 : 0) }] }
            return [try g * self.map { $0 > 0 ? 1 : 0 }]
        }
    }

    /// x for x > 0, `negativeSlope * x` otherwise.
    public func leakyRelu(negativeSlope: Float = 0.01) -> Tensor {
        let out = Profiler.measure("leaky_relu") { map { $0 > 0 ? $0 : $0 * negativeSlope } }
        return Tensor.record(out, "leaky_relu", [self]) { g, _ in
            if !GradMode.isEnabled { return [try Tensor.zipMap(g, self) { g, x in g * (x > 0 ? 1 : negativeSlope) }] }
            return [try g * self.map { $0 > 0 ? 1 : negativeSlope }]
        }
    }

    /// |x|; its derivative at 0 is taken as 0, as in PyTorch.
    public func abs() -> Tensor {
        let out = map { Swift.abs($0) }
        return Tensor.record(out, "abs", [self]) { g, _ in
            [try g * self.map { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }]
        }
    }

    /// Square root; the gradient at 0 is +inf, as in PyTorch.
    public func sqrt() -> Tensor {
        let out = map(squareRootOrNaN)
        return Tensor.recordUsingOutput(out, "sqrt", [self]) { g, y, _ in
            [try (g / y) * 0.5]
        }
    }

    /// x * x.
    public func square() -> Tensor {
        let out = map { $0 * $0 }
        return Tensor.record(out, "square", [self]) { g, _ in [try (g * self) * 2] }
    }

    /// x raised to a constant power.
    public func pow(_ exponent: Float) -> Tensor {
        let out: Tensor
        switch exponent {
        case 2: out = map { $0 * $0 }
        case 0.5: out = map(squareRootOrNaN)
        case 1: out = map { $0 }
        default: out = map { powf($0, exponent) }
        }
        return Tensor.record(out, "pow", [self]) { g, _ in
            // d/dx x^0 is 0 everywhere, including at x = 0 where the general rule gives 0 * inf.
            if exponent == 0 { return [g * 0] }
            return [try g * (self.pow(exponent - 1) * exponent)]
        }
    }

    /// `base` raised elementwise to `exponent`, with broadcasting.
    ///
    /// As in PyTorch, the gradient with respect to the exponent is taken as 0 where the base is 0
    /// (and the exponent non-negative), where the rule y * log(base) would give NaN.
    public static func pow(_ base: Tensor, _ exponent: Tensor) throws -> Tensor {
        let out = try binary(base, exponent, "pow") { powf($0, $1) }
        return recordUsingOutput(out, "pow", [base, exponent]) { g, y, need in
            var gBase: Tensor?, gExponent: Tensor?
            if need[0] {
                gBase = try (g * (try exponent * (try Tensor.pow(base, exponent - 1)))).sumTo(base.shape)
            }
            if need[1] {
                let zeroBase = try binary(base, exponent, "pow") { $0 == 0 && $1 >= 0 ? 1 : 0 }
                let keep = 1 - zeroBase
                // log of (base where kept, 1 elsewhere): finite wherever the result is used.
                let logBase = try (base + zeroBase).log()
                gExponent = try (g * (try y * logBase) * keep).sumTo(exponent.shape)
            }
            return [gBase, gExponent]
        }
    }

    /// Limits every element to [min, max]; either bound may be omitted. NaN stays NaN.
    ///
    /// The gradient passes where min <= x <= max (inclusive, as in PyTorch) and is 0 elsewhere.
    public func clamped(min lower: Float? = nil, max upper: Float? = nil) -> Tensor {
        let lo = lower ?? -Float.infinity, hi = upper ?? Float.infinity
        let out = map { $0 < lo ? lo : ($0 > hi ? hi : $0) }
        return Tensor.record(out, "clamp", [self]) { g, _ in
            [try g * self.map { $0 >= lo && $0 <= hi ? 1 : 0 }]
        }
    }
}

/// `Tensor.leakyRelu`'s value of z, or with slope 0 `Tensor.relu`'s (which maps -0 and -inf to 0
/// and keeps NaN): for the ops that apply the activation inside another op's loop.
@inline(__always)
func leakyReLUValue(_ z: Float, slope: Float) -> Float {
    if slope == 0 { return z < 0 ? 0 : z }
    return z > 0 ? z : z * slope
}

/// Square root, NaN for negative x, written so that loops over it vectorise.
///
/// A plain `x.squareRoot()` loop compiled to scalar `vsqrtss` with a call to libm's `sqrtf` for
/// negative inputs (to set errno); taking the root of a value known not to be negative lets LLVM
/// emit `vsqrtps` on ymm registers.
@inline(__always)
func squareRootOrNaN(_ x: Float) -> Float {
    let root = (x < 0 ? 0 : x).squareRoot()
    return x < 0 ? .nan : root
}
