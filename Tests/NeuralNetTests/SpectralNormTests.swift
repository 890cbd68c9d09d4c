import GANFlowTestSupport
import NeuralNet
import Testing
import TensorRuntime

/// A plain Double reference of PyTorch's spectral norm on a [rows, columns] matrix.
struct PowerIterationReference {
    var w: [[Double]]
    var rows: Int { w.count }
    var columns: Int { w[0].count }

    init(_ matrix: [Float], rows: Int) {
        let columns = matrix.count / rows
        w = (0..<rows).map { r in (0..<columns).map { Double(matrix[r * columns + $0]) } }
    }

    static func normalized(_ x: [Double]) -> [Double] {
        let n = max(x.map { $0 * $0 }.reduce(0, +).squareRoot(), 1e-12)
        return x.map { $0 / n }
    }

    func times(_ v: [Double]) -> [Double] { w.map { row in zip(row, v).map(*).reduce(0, +) } }
    func transposeTimes(_ u: [Double]) -> [Double] { (0..<columns).map { c in (0..<rows).map { w[$0][c] * u[$0] }.reduce(0, +) } }

    /// `rounds` of v = normalize(W^T u), u = normalize(W v), then sigma = u . W v.
    func iterate(u: [Double], v: [Double], rounds: Int) -> (u: [Double], v: [Double], sigma: Double) {
        var u = u, v = v
        for _ in 0..<rounds {
            v = Self.normalized(transposeTimes(u))
            u = Self.normalized(times(v))
        }
        return (u, v, zip(u, times(v)).map(*).reduce(0, +))
    }
}

@Suite struct SpectralNormTests {
    /// The weight of `layer` as [outputs, rest] (ConvTranspose2d: axes 0 and 1 swapped first).
    func matrix(_ layer: any WeightedLayer) -> (values: [Float], rows: Int) {
        let w = layer.weight, s = w.shape, data = w.scalars
        guard layer.outputAxis == 1 else { return (data, s[0]) }
        let inner = s[2...].reduce(1, *)
        var out: [Float] = []
        for o in 0..<s[1] { for i in 0..<s[0] { out += data[(i * s[1] + o) * inner..<(i * s[1] + o + 1) * inner] } }
        return (out, s[1])
    }

    @Test(arguments: ["linear", "conv", "convTranspose"])
    func oneTrainingPassIsOneRoundOfPowerIteration(_ kind: String) throws {
        var rng = PhiloxRandom(seed: 3)
        let layer: any WeightedLayer
        let x: Tensor
        switch kind {
        case "linear":
            layer = try Linear(6, 4, rng: &rng)
            x = Tensor(randomNormal: [2, 6], using: &rng)
        case "conv":
            layer = try Conv2D(3, 5, kernel: 3, stride: 1, padding: 1, rng: &rng)
            x = Tensor(randomNormal: [2, 3, 4, 4], using: &rng)
        default:
            layer = try ConvTranspose2D(3, 5, kernel: 4, stride: 2, padding: 1, rng: &rng)
            x = Tensor(randomNormal: [2, 3, 3, 3], using: &rng)
        }
        let sn = SpectralNorm(layer, rng: &rng)
        let (values, rows) = matrix(layer)
        #expect(sn.u.shape == [rows] && sn.v.shape == [values.count / rows])
        let reference = PowerIterationReference(values, rows: rows)
        let expected = reference.iterate(u: sn.u.scalars.map(Double.init), v: sn.v.scalars.map(Double.init), rounds: 1)

        let y = try sn.forward(x, mode: .train)
        #expect(maxError(sn.u.scalars, expected.u) < 1e-5)
        #expect(maxError(sn.v.scalars, expected.v) < 1e-5)
        #expect(abs(Double(try sn.sigma().item()) - expected.sigma) < 1e-5 * expected.sigma)
        // The layer ran with W / sigma.
        let scaled = try (layer.weight / Tensor(Float(expected.sigma))).detached()
        let direct = try layer.forward(x, weight: scaled)
        #expect(maxError(y.scalars, direct.scalars.map(Double.init)) < 1e-5)

        // Sample passes reuse the vectors without changing them.
        let u = sn.u.scalars
        _ = try sn.forward(x, mode: .sample)
        _ = try sn.forward(x, mode: .eval)
        #expect(sn.u.scalars == u)
    }

    @Test func sigmaConvergesToTheLargestSingularValue() throws {
        var rng = PhiloxRandom(seed: 4)
        let conv = try Conv2D(4, 6, kernel: 3, rng: &rng)
        let sn = SpectralNorm(conv, rng: &rng)
        let (values, rows) = matrix(conv)
        // The reference runs long from its own start: its sigma is the top singular value.
        let reference = PowerIterationReference(values, rows: rows)
        let start = PowerIterationReference.normalized((0..<rows).map { Double($0 + 1) })
        let top = reference.iterate(u: start, v: Array(repeating: 0, count: values.count / rows), rounds: 3000).sigma
        try sn.updateVectors(rounds: 300)
        let sigma = Double(try sn.sigma().item())
        #expect(abs(sigma - top) < 1e-4 * top)
        // The normalised weight then has spectral norm 1.
        let normalized = try sn.normalizedWeight().scalars
        let unit = PowerIterationReference(normalized, rows: rows).iterate(u: start, v: [], rounds: 3000).sigma
        #expect(abs(unit - 1) < 1e-4)
    }

    @Test func gradientReachesTheWeightThroughSigma() throws {
        var rng = PhiloxRandom(seed: 5)
        let linear = try Linear(3, 2, rng: &rng)
        let sn = SpectralNorm(linear, rng: &rng)
        try sn.updateVectors(rounds: 5)
        let x = Tensor(randomNormal: [4, 3], using: &rng), r = Tensor(randomNormal: [4, 2], using: &rng)
        let err = try GradientCheck.firstOrderError([linear.weight], epsilon: 1e-2) { _ in
            try (try sn.forward(x, mode: .sample) * r).sum()
        }
        #expect(err < 1e-2)
    }

    func maxError(_ a: [Float], _ b: [Double]) -> Double {
        largestDifference(a, b)
    }
}

@Suite struct ExponentialMovingAverageTests {
    func network(_ seed: UInt64) throws -> Sequential {
        var rng = PhiloxRandom(seed: seed)
        return Sequential([try Linear(3, 2, rng: &rng), BatchNorm(2)])
    }

    @Test func averagesParametersAndCopiesBuffers() throws {
        let source = try network(1), average = try network(2)
        let ema = try ExponentialMovingAverage(of: source, into: average, decay: 0.75)
        #expect(average.namedParameters.map { $0.1.scalars } == source.namedParameters.map { $0.1.scalars })

        var history = [source.namedParameters.map { $0.1.scalars }]
        var rng = PhiloxRandom(seed: 3)
        for _ in 0..<3 {
            for (_, p) in source.namedParameters { try p.assign(Tensor(randomNormal: p.shape, using: &rng)) }
            _ = try source.forward(Tensor(randomNormal: [4, 3], using: &rng), mode: .train)
            try ema.update()
            history.append(source.namedParameters.map { $0.1.scalars })
        }
        // a_0 = p_0, a_k = 0.75 a_(k-1) + 0.25 p_k.
        var expected = history[0].map { $0.map(Double.init) }
        for k in 1...3 {
            expected = zip(expected, history[k]).map { a, p in zip(a, p).map { 0.75 * $0 + 0.25 * Double($1) } }
        }
        for (k, (_, t)) in average.namedParameters.enumerated() {
            #expect(largestDifference(t.scalars, expected[k]) < 1e-6)
        }
        #expect(average.namedBuffers.map { $0.1.scalars } == source.namedBuffers.map { $0.1.scalars })
        #expect(average.namedCounters.map(\.1) == [3] && ema.updates == 3)
    }

    @Test func refusesAnotherArchitectureOrABadDecay() throws {
        var rng = PhiloxRandom(seed: 1)
        let other = Sequential([try Linear(3, 3, rng: &rng)])
        #expect(throws: OptimizerError("ema: the average's parameters do not match the source's")) {
            try ExponentialMovingAverage(of: try network(1), into: other, decay: 0.9)
        }
        #expect(throws: OptimizerError("ema: decay must be in [0, 1), got 1.0")) {
            try ExponentialMovingAverage(of: try network(1), into: try network(2), decay: 1)
        }
    }
}
