import Foundation
import Testing
import TensorRuntime
import GANFlowTestSupport

@Suite struct UnaryTests {
    /// Inputs spanning small and large magnitudes, with no element within 0.05 of 0.
    static let wide: [Float] = [-40, -12, -3.5, -1, -0.3, 0.2, 0.9, 2.5, 11, 40]
    /// Small inputs away from the kinks at 0, for finite differences.
    static let moderate: [Float] = [-1.3, -0.4, 0.7, 1.1, -0.2, 0.35]

    static func tensor(_ values: [Float]) -> Tensor {
        try! Tensor(shape: [values.count], scalars: values)
    }

    @Test func smoothFunctionsMatchDoublePrecision() {
        let x = Self.tensor(Self.wide), xd = Self.wide.map(Double.init)
        #expect(OpsCheck.maxRelativeError(x.exp().scalars, xd.map { Foundation.exp($0) }) < 1e-6)
        #expect(OpsCheck.maxRelativeError(x.tanh().scalars, xd.map { Foundation.tanh($0) }) < 1e-6)
        #expect(OpsCheck.maxRelativeError(x.sigmoid().scalars, xd.map { 1 / (1 + Foundation.exp(-$0)) }) < 1e-6)
        #expect(OpsCheck.maxRelativeError(x.square().scalars, xd.map { $0 * $0 }) < 1e-6)
        let positive = Self.wide.map { Swift.abs($0) }, pd = positive.map(Double.init)
        let p = Self.tensor(positive)
        #expect(OpsCheck.maxRelativeError(p.log().scalars, pd.map { Foundation.log($0) }) < 1e-6)
        #expect(OpsCheck.maxRelativeError(p.sqrt().scalars, pd.map { $0.squareRoot() }) < 1e-6)
        #expect(OpsCheck.maxRelativeError(p.pow(1.7).scalars, pd.map { Foundation.pow($0, 1.7) }) < 1e-5)
        #expect(OpsCheck.maxRelativeError(p.pow(-0.5).scalars, pd.map { Foundation.pow($0, -0.5) }) < 1e-6)
        #expect(OpsCheck.maxRelativeError(x.pow(3).scalars, xd.map { $0 * $0 * $0 }) < 1e-6)
        #expect(OpsCheck.maxRelativeError(x.pow(2).scalars, xd.map { $0 * $0 }) < 1e-6)
    }

    /// Large tensors take oneDNN's vectorised tanh; it must agree with the libm path.
    @Test func tanhOfALargeTensorMatchesDoublePrecision() throws {
        let n = 3 * 4096 + 5
        let values: [Float] = (0..<n).map { i in
            let t = Float(i) / Float(n - 1)
            return (i % 2 == 0 ? 1 : -1) * Foundation.powf(10, -6 + 7.5 * t)  // 1e-6 ... 3e1, both signs
        }
        let y = try Tensor(shape: [n], scalars: values).tanh().scalars
        let exact = values.map { Foundation.tanh(Double($0)) }
        let error = OpsCheck.maxRelativeError(y, exact)
        #expect(error < 2e-6, "max relative error \(error)")
        #expect(y.last == 1 || y.last == -1)
    }

    @Test func sigmoidStaysFiniteAndAccurateAtExtremes() {
        let s = Self.tensor([-200, -90, -20, 20, 90, 200]).sigmoid().scalars
        #expect(s.allSatisfy { !$0.isNaN && $0 >= 0 && $0 <= 1 })
        #expect(s[0] == 0 && s[5] == 1)
        // e^-20 is about 2.06e-9: the naive 1 - 1/(1+e^20) form would give exactly 0 here.
        #expect(Swift.abs(s[2] - Float(Foundation.exp(-20.0) / (1 + Foundation.exp(-20.0)))) < 1e-15)
        #expect(s[1] > 0)
    }

    @Test func logOfZeroAndNegativeFollowPyTorch() {
        let y = Self.tensor([0, -1]).log().scalars
        #expect(y[0] == -.infinity)
        #expect(y[1].isNaN)
    }

    @Test func piecewiseFunctionsMatchDefinitions() {
        let values: [Float] = [-2, -0.5, 0, 0.5, 3]
        let x = Self.tensor(values)
        #expect(x.relu().scalars == [0, 0, 0, 0.5, 3])
        #expect(x.leakyRelu(negativeSlope: 0.2).scalars == [-0.4, -0.1, 0, 0.5, 3])
        #expect(x.abs().scalars == [2, 0.5, 0, 0.5, 3])
        #expect(x.clamped(min: -1, max: 1).scalars == [-1, -0.5, 0, 0.5, 1])
        #expect(x.clamped(min: 0).scalars == [0, 0, 0, 0.5, 3])
        #expect(x.clamped(max: -0.5).scalars == [-2, -0.5, -0.5, -0.5, -0.5])
        #expect(Self.tensor([.nan]).relu().scalars[0].isNaN)
        #expect(Self.tensor([.nan]).clamped(min: 0, max: 1).scalars[0].isNaN)
    }

    @Test func derivativesAtKinksFollowPyTorch() throws {
        let x = Self.tensor([0, 1, -1, 2]).requiringGradients()
        func grad(_ f: (Tensor) throws -> Tensor) throws -> [Float] {
            try gradients(of: try f(x).sum(), wrt: [x])[0].scalars
        }
        #expect(try grad { $0.relu() } == [0, 1, 0, 1])
        #expect(try grad { $0.leakyRelu(negativeSlope: 0.1) } == [0.1, 1, 0.1, 1])
        #expect(try grad { $0.abs() } == [0, 1, -1, 1])
        // Inclusive bounds: the gradient passes at x == min and x == max.
        #expect(try grad { $0.clamped(min: -1, max: 1) } == [1, 1, 1, 0])
        #expect(try grad { $0.pow(0) } == [0, 0, 0, 0])
        #expect(try grad { $0.sqrt() }[0] == .infinity)
    }

    @Test func firstOrderGradients() throws {
        let cases: [(String, [Float], (Tensor) throws -> Tensor)] = [
            ("exp", Self.moderate, { $0.exp() }),
            ("log", Self.moderate.map { Swift.abs($0) + 0.3 }, { $0.log() }),
            ("tanh", Self.moderate, { $0.tanh() }),
            ("sigmoid", Self.moderate, { $0.sigmoid() }),
            ("relu", Self.moderate, { $0.relu() }),
            ("leakyRelu", Self.moderate, { $0.leakyRelu(negativeSlope: 0.2) }),
            ("abs", Self.moderate, { $0.abs() }),
            ("sqrt", Self.moderate.map { Swift.abs($0) + 0.3 }, { $0.sqrt() }),
            ("square", Self.moderate, { $0.square() }),
            ("pow3", Self.moderate, { $0.pow(3) }),
            ("pow-1.5", Self.moderate.map { Swift.abs($0) + 0.3 }, { $0.pow(-1.5) }),
            ("clamp", Self.moderate, { $0.clamped(min: -1, max: 0.5) }),
        ]
        var rng = PhiloxRandom(seed: 11)
        for (name, values, f) in cases {
            let weights = Tensor(randomNormal: [values.count], using: &rng)
            let err = try GradientCheck.firstOrderError([Self.tensor(values)]) { x in
                (try f(x[0]) * weights).sum()
            }
            #expect(err < 1e-2, "\(name): \(err)")
        }
    }

    @Test func secondOrderGradients() throws {
        // Each f has a non-zero second derivative, so the backward rules themselves are checked.
        let cases: [(String, [Float], (Tensor) throws -> Tensor)] = [
            ("leakyRelu", Self.moderate, { x in x.leakyRelu(negativeSlope: 0.2).square() }),
            ("relu", Self.moderate, { x in try x.relu() * x }),
            ("tanh", Self.moderate, { $0.tanh() }),
            ("sigmoid", Self.moderate, { $0.sigmoid() }),
            ("exp", Self.moderate, { x in try x.exp() * x }),
            ("log", Self.moderate.map { Swift.abs($0) + 0.5 }, { x in try x.log() * x }),
            ("sqrt", Self.moderate.map { Swift.abs($0) + 0.5 }, { $0.sqrt() }),
            ("pow3", Self.moderate, { $0.pow(3) }),
            ("pow2.5", Self.moderate.map { Swift.abs($0) + 0.5 }, { $0.pow(2.5) }),
            ("abs", Self.moderate, { x in try x.abs() * x }),
            ("clamp", Self.moderate, { x in x.clamped(min: -1, max: 0.5).square() }),
        ]
        for (name, values, f) in cases {
            let err = try GradientCheck.secondOrderError([Self.tensor(values)]) { x in try f(x[0]).sum() }
            #expect(err < 2e-2, "\(name): \(err)")
        }
    }

    @Test func elementwisePowerBroadcastsAndDifferentiates() throws {
        let base = try Tensor(shape: [2, 3], scalars: [0.5, 1.2, 2, 0.8, 1.5, 3])
        let exponent = try Tensor(shape: [3], scalars: [2, -0.5, 1.3])
        let y = try Tensor.pow(base, exponent)
        let b = base.scalars, e = exponent.scalars
        let reference = (0..<6).map { Foundation.pow(Double(b[$0]), Double(e[$0 % 3])) }
        #expect(OpsCheck.maxRelativeError(y.scalars, reference) < 1e-6)
        let first = try GradientCheck.firstOrderError([base, exponent]) { x in try Tensor.pow(x[0], x[1]).sum() }
        #expect(first < 1e-2)
        let second = try GradientCheck.secondOrderError([base, exponent]) { x in try Tensor.pow(x[0], x[1]).sum() }
        #expect(second < 2e-2)
    }

    @Test func elementwisePowerExponentGradientIsZeroAtZeroBase() throws {
        let base = Self.tensor([0, 2]), exponent = Self.tensor([2, 3]).requiringGradients()
        let g = try gradients(of: try Tensor.pow(base, exponent).sum(), wrt: [exponent])[0].scalars
        #expect(g[0] == 0)
        #expect(Swift.abs(g[1] - 8 * Float(Foundation.log(2.0))) < 1e-5)
    }

    @Test func backwardDoesNotKeepOutputsAlive() throws {
        weak var weakOutput: Tensor?
        do {
            let x = Self.tensor([0.5, 1]).requiringGradients()
            let y = x.sigmoid()
            weakOutput = y
            _ = try gradients(of: y.sum(), wrt: [x])
        }
        #expect(weakOutput == nil)
    }
}
