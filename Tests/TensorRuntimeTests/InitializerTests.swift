import Foundation
import Testing
import TensorRuntime

/// PyTorch's values for this suite, written by `Scripts/golden/ops_golden.py`.
struct OpsGolden: Decodable {
    struct Fans: Decodable {
        var shape: [Int]
        var fanIn: Int
        var fanOut: Int
    }
    struct DefaultInit: Decodable {
        var weightShape: [Int]
        var weightBound: Double
        var biasBound: Double
        var observedWeightMaxAbs: Double
        var observedBiasMaxAbs: Double
    }
    struct Activations: Decodable {
        var x: [Float]
        var sigmoid: [Double]
        var tanh: [Double]
        var leakyRelu02: [Double]
        enum CodingKeys: String, CodingKey {
            case x, sigmoid, tanh
            case leakyRelu02 = "leakyRelu0.2"
        }
    }
    struct BCE: Decodable {
        var logits: [Float]
        var targets: [Float]
        var none: [Double]
        var mean: Double
    }
    var fans: [Fans]
    var gains: [String: Double]
    var defaults: [DefaultInit]
    var activations: Activations
    var bce: BCE

    static func load() throws -> OpsGolden {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("Fixtures/golden/ops.json"))
        return try JSONDecoder().decode(OpsGolden.self, from: data)
    }
}

@Suite struct InitializerTests {
    /// Mean and (population) standard deviation in Double.
    static func moments(_ t: Tensor) -> (mean: Double, std: Double) {
        let v = t.scalars.map(Double.init)
        let mean = v.reduce(0, +) / Double(v.count)
        let variance = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count)
        return (mean, variance.squareRoot())
    }

    @Test func fansMatchPyTorch() throws {
        let golden = try OpsGolden.load()
        #expect(golden.fans.count == 5)
        for f in golden.fans {
            let (fanIn, fanOut) = try Initializers.fans(f.shape)
            #expect(fanIn == f.fanIn && fanOut == f.fanOut, "\(f.shape)")
        }
        // ConvTranspose2d(100, 512, 4): weight [in, out, kh, kw], fan-in taken from axis 1.
        #expect(try Initializers.fans([100, 512, 4, 4]) == (8192, 1600))
        #expect(throws: TensorError("fans: a weight needs at least 2 axes to have a fan-in and fan-out, got shape [10]")) {
            try Initializers.fans([10])
        }
    }

    @Test func gainsMatchPyTorch() throws {
        let g = try OpsGolden.load().gains
        let cases: [(String, Initializers.Nonlinearity)] = [
            ("linear", .linear), ("conv2d", .conv), ("sigmoid", .sigmoid), ("tanh", .tanh), ("relu", .relu),
            ("leakyRelu0.2", .leakyRelu(negativeSlope: 0.2)),
            ("leakyReluSqrt5", .leakyRelu(negativeSlope: Float(5).squareRoot())), ("selu", .selu),
        ]
        #expect(cases.count == g.count)
        for (key, nonlinearity) in cases {
            let expected = try #require(g[key])
            #expect(Swift.abs(Double(Initializers.gain(nonlinearity)) - expected) < 1e-6, "\(key)")
        }
    }

    @Test func defaultLayerInitMatchesPyTorchBounds() throws {
        var rng = PhiloxRandom(seed: 51)
        for d in try OpsGolden.load().defaults {
            let bound = try Initializers.kaimingStd(d.weightShape, a: Float(5).squareRoot()) * Float(3).squareRoot()
            #expect(Swift.abs(Double(bound) - d.weightBound) < 1e-6 * d.weightBound)
            // PyTorch's own draws lie within, and reach close to, that bound.
            #expect(d.observedWeightMaxAbs <= d.weightBound && d.observedWeightMaxAbs > 0.99 * d.weightBound)
            let w = try Initializers.defaultWeight(d.weightShape, using: &rng)
            #expect(w.shape == d.weightShape)
            let maxAbs = Double(w.scalars.map { Swift.abs($0) }.max()!)
            #expect(maxAbs <= d.weightBound * (1 + 1e-6) && maxAbs > 0.95 * d.weightBound)
            let b = try Initializers.defaultBias(64, weightShape: d.weightShape, using: &rng)
            #expect(b.shape == [64])
            #expect(b.scalars.allSatisfy { Swift.abs(Double($0)) <= d.biasBound * (1 + 1e-6) })
        }
    }

    @Test func uniformFamiliesHaveTheirBoundsAndMoments() throws {
        var rng = PhiloxRandom(seed: 52)
        let shape = [256, 128, 3, 3]  // fan-in 1152, fan-out 2304
        let cases: [(String, Double, Tensor)] = [
            ("kaimingUniform", (6.0 / 1152).squareRoot(), try Initializers.kaimingUniform(shape, using: &rng)),
            ("kaimingUniform fanOut relu", (6.0 / 2304).squareRoot(),
             try Initializers.kaimingUniform(shape, mode: .fanOut, nonlinearity: .relu, using: &rng)),
            ("kaimingUniform leaky 0.2", (2 / 1.04 * 3 / 1152).squareRoot(),
             try Initializers.kaimingUniform(shape, a: 0.2, using: &rng)),
            ("xavierUniform gain 2", 2 * (6.0 / (1152 + 2304)).squareRoot(),
             try Initializers.xavierUniform(shape, gain: 2, using: &rng)),
            ("uniform", 0.5, Initializers.uniform(shape, low: -0.5, high: 0.5, using: &rng)),
        ]
        for (name, bound, t) in cases {
            let v = t.scalars
            // Bounds are rounded to Float, so allow them a relative 1e-6.
            let slack = bound * (1 + 1e-6)
            #expect(v.allSatisfy { Double($0) >= -slack && Double($0) <= slack }, "\(name)")
            #expect(Double(v.max()!) > 0.999 * bound && Double(v.min()!) < -0.999 * bound, "\(name)")
            let (mean, std) = Self.moments(t)
            // n = 294912: the mean's standard error is about 0.002 of the bound.
            #expect(Swift.abs(mean) < 0.01 * bound, "\(name)")
            #expect(Swift.abs(std / (bound / 3.0.squareRoot()) - 1) < 0.01, "\(name)")
        }
    }

    @Test func normalFamiliesHaveTheirMoments() throws {
        var rng = PhiloxRandom(seed: 53)
        let shape = [512, 64, 3, 3]  // fan-in 576, fan-out 4608
        let cases: [(String, Double, Double, Tensor)] = [
            ("kaimingNormal", 0, (2.0 / 576).squareRoot(), try Initializers.kaimingNormal(shape, using: &rng)),
            ("kaimingNormal fanOut linear", 0, (1.0 / 4608).squareRoot(),
             try Initializers.kaimingNormal(shape, mode: .fanOut, nonlinearity: .linear, using: &rng)),
            ("xavierNormal tanh gain", 0, 5.0 / 3 * (2.0 / (576 + 4608)).squareRoot(),
             try Initializers.xavierNormal(shape, gain: Initializers.gain(.tanh), using: &rng)),
            ("normal", 0.3, 0.02, Initializers.normal(shape, mean: 0.3, std: 0.02, using: &rng)),
        ]
        for (name, expectedMean, expectedStd, t) in cases {
            let (mean, std) = Self.moments(t)
            #expect(Swift.abs(mean - expectedMean) < 0.01 * expectedStd, "\(name)")
            #expect(Swift.abs(std / expectedStd - 1) < 0.01, "\(name)")
        }
    }

    @Test func drawsAreReproducibleForASeed() throws {
        var a = PhiloxRandom(seed: 54), b = PhiloxRandom(seed: 54), c = PhiloxRandom(seed: 55)
        let x = try Initializers.kaimingNormal([8, 4], using: &a)
        let y = try Initializers.kaimingNormal([8, 4], using: &b)
        let z = try Initializers.kaimingNormal([8, 4], using: &c)
        #expect(x.scalars == y.scalars)
        #expect(x.scalars != z.scalars)
        #expect(a == b)
    }
}

@Suite struct GoldenActivationTests {
    @Test func activationsAndBCEMatchPyTorch() throws {
        let golden = try OpsGolden.load()
        let x = try Tensor(shape: [golden.activations.x.count], scalars: golden.activations.x)
        #expect(OpsCheck.maxRelativeError(x.sigmoid().scalars, golden.activations.sigmoid) < 1e-6)
        #expect(OpsCheck.maxRelativeError(x.tanh().scalars, golden.activations.tanh) < 1e-6)
        #expect(OpsCheck.maxRelativeError(x.leakyRelu(negativeSlope: 0.2).scalars, golden.activations.leakyRelu02) < 1e-6)
        let logits = try Tensor(shape: [golden.bce.logits.count], scalars: golden.bce.logits)
        let targets = try Tensor(shape: [golden.bce.targets.count], scalars: golden.bce.targets)
        let none = try Tensor.binaryCrossEntropyWithLogits(logits, targets, reduction: .none)
        #expect(OpsCheck.maxRelativeError(none.scalars, golden.bce.none) < 1e-6)
        let mean = try Tensor.binaryCrossEntropyWithLogits(logits, targets)
        #expect(OpsCheck.maxRelativeError([mean.item()], [golden.bce.mean]) < 1e-6)
    }
}
