import TensorRuntime

/// Finite-difference checks of autograd, for tests.
///
/// Float32 central differences are noisy, so inputs should be O(1) and the function smooth near
/// them; the tolerance is on |analytic - numeric| / max(1, |numeric|).
public enum GradientCheck {
    /// The largest error between autograd's and central differences' gradients of `f` (a scalar
    /// function of `inputs`), over every element of every input.
    public static func firstOrderError(
        _ inputs: [Tensor], epsilon: Float = 1e-2, _ f: ([Tensor]) throws -> Tensor
    ) throws -> Float {
        for x in inputs { x.requiringGradients() }
        let y = try f(inputs)
        let analytic = try gradients(of: y, wrt: inputs)
        var worst: Float = 0
        for (k, x) in inputs.enumerated() {
            let a = analytic[k].scalars
            for i in 0..<x.count {
                let numeric = try centralDifference(x, i, epsilon) { try f(inputs).item() }
                worst = max(worst, abs(a[i] - numeric) / max(1, abs(numeric)))
            }
        }
        return worst
    }

    /// The largest error of the second-order gradient: `g(x) = sum(w * df/dx)` for fixed random
    /// weights `w`, differentiated by autograd (through `createGraph`) and by central differences.
    public static func secondOrderError(
        _ inputs: [Tensor], epsilon: Float = 1e-2, seed: UInt64 = 7, _ f: ([Tensor]) throws -> Tensor
    ) throws -> Float {
        for x in inputs { x.requiringGradients() }
        var rng = PhiloxRandom(seed: seed)
        let weights = inputs.map { x in Tensor(randomNormal: x.shape, using: &rng) }
        func g(_ xs: [Tensor]) throws -> Tensor {
            let y = try f(xs)
            let gs = try gradients(of: y, wrt: xs, createGraph: true)
            var total = Tensor(0)
            for (gi, w) in zip(gs, weights) { total = try total + (gi * w).sum() }
            return total
        }
        return try firstOrderError(inputs, epsilon: epsilon, g)
    }

    static func centralDifference(_ x: Tensor, _ i: Int, _ eps: Float, _ f: () throws -> Float) throws -> Float {
        precondition(x.isContiguous)
        let p = x.data
        let saved = p[i]
        p[i] = saved + eps
        let up = try f()
        p[i] = saved - eps
        let down = try f()
        p[i] = saved
        return (up - down) / (2 * eps)
    }
}
