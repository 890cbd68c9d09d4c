import Testing
import TensorRuntime
import GANFlowTestSupport

@Suite struct DropoutTests {
    @Test func masksAndScalesReproducibly() throws {
        var rng = PhiloxRandom(seed: 61)
        let x = Tensor(randomNormal: [100, 100], using: &rng)
        var a = PhiloxRandom(seed: 62), b = PhiloxRandom(seed: 62)
        let y = try x.dropout(probability: 0.3, training: true, using: &a)
        let z = try x.dropout(probability: 0.3, training: true, using: &b)
        #expect(y.scalars == z.scalars)
        #expect(a == b && a.counter == 2500)
        // Each element is either dropped or scaled by 1 / 0.7, and about 30% are dropped.
        var dropped = 0
        for (xi, yi) in zip(x.scalars, y.scalars) {
            if yi == 0 { dropped += 1 } else { #expect(Swift.abs(yi - xi / 0.7) <= 1e-6 * Swift.abs(xi / 0.7)) }
        }
        #expect(dropped > 2800 && dropped < 3200)
        // The next call continues the stream, so it draws a different mask.
        let again = try x.dropout(probability: 0.3, training: true, using: &a)
        #expect(again.scalars != y.scalars)
    }

    @Test func identityWhenNotTrainingAndZeroWhenAllDropped() throws {
        var rng = PhiloxRandom(seed: 63)
        let x = Tensor(randomNormal: [5], using: &rng)
        #expect(try x.dropout(probability: 0.5, training: false, using: &rng) === x)
        #expect(try x.dropout(probability: 0, training: true, using: &rng) === x)
        #expect(try x.dropout(probability: 1, training: true, using: &rng).scalars == [0, 0, 0, 0, 0])
        #expect(throws: TensorError("dropout: probability 1.5 is outside [0, 1]")) {
            try x.dropout(probability: 1.5, training: true, using: &rng)
        }
    }

    @Test func gradientUsesTheSameMask() throws {
        let x = Tensor(repeating: 2, shape: [1000]).requiringGradients()
        var rng = PhiloxRandom(seed: 64)
        let y = try x.dropout(probability: 0.5, training: true, using: &rng)
        let g = try gradients(of: y.sum(), wrt: [x])[0]
        // y = 2 * mask and dy/dx = mask, elementwise.
        #expect(g.scalars == y.scalars.map { $0 / 2 })
        // Second order through the mask: sum(y^3) has second derivative 6 m^3 x. Each evaluation
        // starts from the same generator state, so finite differences see the same mask.
        let start = PhiloxRandom(seed: 65)
        let small = Tensor(repeating: 0.5, shape: [6])
        let err = try GradientCheck.secondOrderError([small]) { v in
            var r = start
            return try v[0].dropout(probability: 0.4, training: true, using: &r).pow(3).sum()
        }
        #expect(err < 2e-2)
    }
}
