import Testing
import TensorRuntime
import GANFlowTestSupport

@Suite struct ProGANOpsTests {
    @Test func pixelNormHandValues() throws {
        // Pixel 0 holds (3, 4): mean square 12.5; pixel 1 holds (1, -1): mean square 1.
        let x = try Tensor(shape: [1, 2, 1, 2], scalars: [3, 1, 4, -1])
        let y = try x.pixelNorm()
        let root = Float(12.5).squareRoot()
        let expected: [Float] = [3 / root, 1, 4 / root, -1]
        for (a, e) in zip(y.scalars, expected) { #expect(abs(a - e) < 1e-6) }
    }

    @Test func pixelNormOfLatentVectors() throws {
        // [N, C] latents; an all-zero vector stays zero thanks to eps.
        let z = try Tensor(shape: [2, 2], scalars: [3, 4, 0, 0])
        let y = try z.pixelNorm()
        let root = Float(12.5).squareRoot()
        #expect(y.shape == [2, 2])
        for (a, e) in zip(y.scalars, [3 / root, 4 / root, 0, 0]) { #expect(abs(a - e) < 1e-6) }
    }

    @Test func pixelNormMatchesNaive() throws {
        var rng = PhiloxRandom(seed: 41)
        let x = Tensor(randomNormal: [2, 5, 3, 2], using: &rng)
        let y = try x.pixelNorm(eps: 1e-3)
        let v = x.scalars, out = y.scalars
        for i in 0..<2 { for p in 0..<6 {
            var sq = 0.0
            for c in 0..<5 { sq += Double(v[(i * 5 + c) * 6 + p]) * Double(v[(i * 5 + c) * 6 + p]) }
            let scale = 1 / (sq / 5 + 1e-3).squareRoot()
            for c in 0..<5 {
                let idx = (i * 5 + c) * 6 + p
                #expect(abs(Double(out[idx]) - Double(v[idx]) * scale) < 1e-5)
            }
        } }
    }

    @Test(arguments: [[2, 3, 2, 2], [3, 4]])
    func pixelNormGradients(shape: [Int]) throws {
        var rng = PhiloxRandom(seed: 42)
        let x = Tensor(randomNormal: shape, using: &rng)
        let r = Tensor(randomNormal: shape, using: &rng)
        let f: ([Tensor]) throws -> Tensor = { v in try (v[0].pixelNorm() * r).sum() }
        #expect(try GradientCheck.firstOrderError([x], f) < 1e-2)
        #expect(try GradientCheck.secondOrderError([x], f) < 2e-2)
    }

    @Test func pixelNormFusedAndRecordedBackwardsAgree() throws {
        var rng = PhiloxRandom(seed: 43)
        let x = Tensor(randomNormal: [3, 4, 2, 3], using: &rng).requiringGradients()
        let r = Tensor(randomNormal: [3, 4, 2, 3], using: &rng)
        let loss = try (x.pixelNorm() * r).sum()
        let fused = try gradients(of: loss, wrt: [x])[0]
        let recorded = try gradients(of: loss, wrt: [x], createGraph: true)[0]
        #expect(GoldenFixture.difference(fused, recorded) < 1e-5)
    }

    @Test func minibatchStddevHandValues() throws {
        // Four samples of two 1x1 channels, groups of 2: sample n is in group n % 2.
        // Group {0, 2}: (0, 0) and (2, 4) have stds 1 and 2 -> 1.5.
        // Group {1, 3}: (1, 1) and (1, 5) have stds sqrt(0 + 1e-8) = 1e-4 and 2 -> 1.00005.
        let x = try Tensor(shape: [4, 2, 1, 1], scalars: [0, 0, 1, 1, 2, 4, 1, 5])
        let y = try x.minibatchStddev(groupSize: 2)
        #expect(y.shape == [4, 3, 1, 1])
        let expected: [Float] = [0, 0, 1.5, 1, 1, 1.00005, 2, 4, 1.5, 1, 5, 1.00005]
        for (a, e) in zip(y.scalars, expected) { #expect(abs(a - e) < 1e-6) }
    }

    @Test func minibatchStddevMatchesNaive() throws {
        var rng = PhiloxRandom(seed: 44)
        let shape = [6, 3, 2, 2]
        let x = Tensor(randomNormal: shape, using: &rng)
        let y = try x.minibatchStddev(groupSize: 3)
        #expect(y.shape == [6, 4, 2, 2])
        let v = x.scalars, out = y.scalars
        let groups = 2, features = 12
        for n in 0..<6 {
            // The input channels are copied unchanged.
            for d in 0..<features { #expect(out[n * 16 + d] == v[n * features + d]) }
            let members = (0..<3).map { $0 * groups + n % groups }
            var total = 0.0
            for d in 0..<features {
                let values = members.map { Double(v[$0 * features + d]) }
                let mean = values.reduce(0, +) / 3
                let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 3
                total += (variance + 1e-8).squareRoot()
            }
            for p in 0..<4 { #expect(abs(Double(out[n * 16 + features + p]) - total / Double(features)) < 1e-5) }
        }
    }

    @Test func groupSizeLargerThanBatchUsesWholeBatch() throws {
        var rng = PhiloxRandom(seed: 45)
        let x = Tensor(randomNormal: [4, 2, 2, 2], using: &rng)
        #expect(try x.minibatchStddev(groupSize: 16).scalars == x.minibatchStddev(groupSize: 4).scalars)
    }

    @Test(arguments: [1, 2, 4])
    func minibatchStddevGradients(groupSize: Int) throws {
        var rng = PhiloxRandom(seed: 46)
        let x = Tensor(randomNormal: [4, 2, 2, 2], using: &rng)
        let r = Tensor(randomNormal: [4, 3, 2, 2], using: &rng)
        let f: ([Tensor]) throws -> Tensor = { v in
            let y = try v[0].minibatchStddev(groupSize: groupSize)
            return try (y * y * r).sum()
        }
        #expect(try GradientCheck.firstOrderError([x], f) < 1e-2)
        #expect(try GradientCheck.secondOrderError([x], f) < 3e-2)
    }

    @Test func invalidArgumentsThrow() throws {
        #expect(throws: TensorError("minibatchStddev: batch size 6 of [6, 3, 2, 2] is not a multiple of the group size 4")) {
            try Tensor(zeros: [6, 3, 2, 2]).minibatchStddev(groupSize: 4)
        }
        #expect(throws: TensorError("minibatchStddev: expected an input of shape [N, C, H, W], got [6, 3]")) {
            try Tensor(zeros: [6, 3]).minibatchStddev(groupSize: 2)
        }
        #expect(throws: TensorError("pixelNorm: expected an input of shape [N, C, ...] with C > 0, got [6]")) {
            try Tensor(zeros: [6]).pixelNorm()
        }
    }
}
