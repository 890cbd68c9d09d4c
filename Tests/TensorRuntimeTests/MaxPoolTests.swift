import Testing
import TensorRuntime
import GANFlowTestSupport

@Suite struct MaxPoolTests {
    @Test func takesTheLargestOfEachWindow() throws {
        let x = try Tensor(shape: [1, 1, 3, 5], scalars: [
            1, 5, 2, 0, 9,
            3, 4, 8, 7, 9,
            6, 6, 6, 6, 6,
        ])
        let y = try x.maxPool2d(kernel: 2)
        // The last row and column do not fill a window and are dropped.
        #expect(y.shape == [1, 1, 1, 2])
        #expect(y.scalars == [5, 8])
    }

    @Test func theGradientGoesToTheFirstMaximum() throws {
        let x = try Tensor(shape: [1, 2, 2, 2], scalars: [1, 3, 3, 2, -1, -4, -2, -3]).requiringGradients()
        let g = try gradients(of: try x.maxPool2d(kernel: 2).sum(), wrt: [x])[0]
        #expect(g.scalars == [0, 1, 0, 0, 1, 0, 0, 0])
    }

    @Test func gradientsOfFirstAndSecondOrder() throws {
        var rng = PhiloxRandom(seed: 31)
        let x = Tensor(randomNormal: [2, 3, 6, 4], using: &rng)
        let w = Tensor(randomNormal: [2, 3, 3, 2], using: &rng)
        // Smooth around a random point: ties are improbable and steps of 1e-3 do not change the argmax.
        #expect(try GradientCheck.firstOrderError([x], epsilon: 1e-3) { xs in try (xs[0].maxPool2d(kernel: 2) * w).sum() } < 1e-2)
        #expect(try GradientCheck.secondOrderError([x], epsilon: 1e-3) { xs in try (xs[0].maxPool2d(kernel: 2).square() * w).sum() } < 1e-2)
    }

    @Test func rejectsWhatItCannotPool() throws {
        #expect(throws: TensorError("maxPool2d: kernel 2 is larger than the input [1, 1, 1, 4]")) {
            try Tensor(zeros: [1, 1, 1, 4]).maxPool2d(kernel: 2)
        }
        #expect(throws: TensorError("maxPool2d: expected an input of shape [N, C, H, W], got [4, 4]")) {
            try Tensor(zeros: [4, 4]).maxPool2d(kernel: 2)
        }
    }
}
