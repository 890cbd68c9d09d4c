import Testing
import TensorRuntime
import GANFlowTestSupport

/// `conv2d(..., leakySlope:)` (the activation a oneDNN post-op of the training forward) against
/// `conv2d` followed by `leakyRelu` (or `relu` for slope 0): the same values and gradients of the
/// first and second order, up to float rounding.
@Suite struct ConvolutionActivationTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let input: [Int]
        let weight: [Int]
        let stride: Int
        let padding: Int
        let bias: Bool
        let slope: Float
        var testDescription: String { "x \(input) w \(weight) s\(stride) p\(padding) bias \(bias) slope \(slope)" }
    }

    static let cases: [Case] = [
        Case(input: [3, 4, 9, 9], weight: [6, 4, 3, 3], stride: 1, padding: 1, bias: true, slope: 0.2),
        Case(input: [3, 4, 9, 9], weight: [6, 4, 3, 3], stride: 1, padding: 1, bias: true, slope: 0),
        Case(input: [4, 1, 8, 8], weight: [8, 1, 4, 4], stride: 2, padding: 1, bias: false, slope: 0.2),
        Case(input: [2, 5, 6, 6], weight: [7, 5, 1, 1], stride: 1, padding: 0, bias: true, slope: 0.2),
        // A window over the whole input: the matrix-product path.
        Case(input: [5, 3, 4, 4], weight: [6, 3, 4, 4], stride: 1, padding: 0, bias: true, slope: 0.2),
    ]

    static func operands(_ c: Case) -> (x: Tensor, w: Tensor, b: Tensor?, r: Tensor) {
        var rng = PhiloxRandom(seed: 51)
        let x = Tensor(randomNormal: c.input, using: &rng)
        let w = Tensor(randomNormal: c.weight, std: 0.3, using: &rng)
        let b = c.bias ? Tensor(randomNormal: [c.weight[0]], std: 0.3, using: &rng) : nil
        let oh = (c.input[2] + 2 * c.padding - c.weight[2]) / c.stride + 1
        let r = Tensor(randomNormal: [c.input[0], c.weight[0], oh, oh], using: &rng)
        return (x, w, b, r)
    }

    static func separate(_ c: Case, _ x: Tensor, _ w: Tensor, _ b: Tensor?) throws -> Tensor {
        let y = try conv2d(x, weight: w, bias: b, stride: Size2D(c.stride, c.stride), padding: Size2D(c.padding, c.padding))
        return c.slope == 0 ? y.relu() : y.leakyRelu(negativeSlope: c.slope)
    }

    static func fused(_ c: Case, _ x: Tensor, _ w: Tensor, _ b: Tensor?) throws -> Tensor {
        try conv2d(x, weight: w, bias: b, stride: Size2D(c.stride, c.stride), padding: Size2D(c.padding, c.padding),
                   leakySlope: c.slope)
    }

    /// Values, the first-order gradients and the gradients of a gradient penalty, by both paths.
    static func results(_ c: Case, _ path: (Case, Tensor, Tensor, Tensor?) throws -> Tensor) throws -> [[Float]] {
        let o = operands(c)
        let leaves = [o.x, o.w] + (o.b.map { [$0] } ?? [])
        for t in leaves { t.requiringGradients() }
        let y = try path(c, o.x, o.w, o.b)
        let first = try gradients(of: try (y * o.r).sum(), wrt: leaves)
        let recorded = try gradients(of: try (y * o.r).sum(), wrt: leaves, createGraph: true)
        let second = try gradients(of: try (recorded[0] * recorded[0]).sum(), wrt: leaves)
        return [y.scalars] + first.map(\.scalars) + second.map(\.scalars)
    }

    @Test(arguments: cases)
    func fusedIsConvolutionThenActivation(c: Case) throws {
        let a = try Self.results(c, Self.separate), b = try Self.results(c, Self.fused)
        #expect(a.count == b.count)
        for (u, v) in zip(a, b) {
            let scale = max(u.map { abs($0) }.max() ?? 1, 1)
            #expect(largestDifference(v, u) <= 1e-5 * scale)
        }
        // The activation did something.
        #expect(b[0].contains { $0 < 0 || $0 == 0 } && b[0].contains { $0 > 0 })
    }

    @Test(.enabled(if: bf16Unavailable == nil, Comment(rawValue: bf16Unavailable ?? "")))
    func fusedInBF16IsConvolutionThenActivationInBF16() throws {
        let c = Self.cases[0]
        let (a, b) = try ComputePrecision.with(.bf16) { (try Self.results(c, Self.separate), try Self.results(c, Self.fused)) }
        for (u, v) in zip(a, b) {
            let scale = max(u.map { abs($0) }.max() ?? 1, 1)
            #expect(largestDifference(v, u) <= 1e-5 * scale)
        }
    }
}
