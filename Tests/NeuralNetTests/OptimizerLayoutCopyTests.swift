import GANFlowTestSupport
import Testing
@testable import NeuralNet
@testable import TensorRuntime

/// Optimizers let the convolution kernels keep copies of the parameters in their own layouts
/// between updates (so the forwards of one step reorder each weight once), and drop them when
/// they update the values: a forward after the update computes with the new weights.
struct OptimizerLayoutCopyTests {
    static func optimizers(_ w: Tensor) throws -> [(String, any Optimizer)] {
        [
            ("adam", try Adam(parameters: [("w", w)], learningRate: 0.1)),
            ("sgd", try SGD(parameters: [("w", w)], learningRate: 0.1, momentum: 0.9)),
            ("rmsprop", try RMSprop(parameters: [("w", w)], learningRate: 0.1)),
        ]
    }

    @Test func inFP32() throws { try Self.forwardAfterAnUpdateSeesTheNewWeights(.fp32) }

    @Test(.enabled(if: bf16Unavailable == nil, Comment(rawValue: bf16Unavailable ?? "")))
    func inBF16() throws { try Self.forwardAfterAnUpdateSeesTheNewWeights(.bf16) }

    static func forwardAfterAnUpdateSeesTheNewWeights(_ precision: ComputePrecision) throws {
        var rng = PhiloxRandom(seed: 31)
        let x = Tensor(randomNormal: [4, 16, 8, 8], using: &rng)
        for index in 0..<3 {
            let w = Tensor(randomNormal: [32, 16, 3, 3], std: 0.1, using: &rng).requiringGradients()
            let (name, optimizer) = try optimizers(w)[index]
            try ComputePrecision.with(precision) {
                let before = try withoutGradients { try conv2d(x, weight: w, padding: 1) }
                #expect((w.layoutCopies?.count ?? 0) > 0, "\(name): the forward kept no copy of the weight")
                try optimizer.step(gradients: [Tensor(randomNormal: w.shape, using: &rng)])
                #expect(w.layoutCopies?.count == 0, "\(name): the update left the copies")
                let after = try withoutGradients { try conv2d(x, weight: w, padding: 1) }
                let fresh = try withoutGradients { try conv2d(x, weight: w.copy(), padding: 1) }
                #expect(after.scalars == fresh.scalars, "\(name): a forward after the update used the old weights")
                #expect(after.scalars != before.scalars)
                // The backward's kernels read the kept copies too (backward-data's own layout).
                let y = try conv2d(x.requiringGradients(), weight: w, padding: 1)
                let dx = try gradients(of: y.sum(), wrt: [x])[0]
                let yFresh = try conv2d(x.requiringGradients(), weight: w.copy(), padding: 1)
                let dxFresh = try gradients(of: yFresh.sum(), wrt: [x])[0]
                #expect(dx.scalars == dxFresh.scalars, "\(name)")
            }
        }
    }

    /// An update of a 2 MB parameter split over three threads gives the bits of one thread.
    @Test func updatesSplitOverThreadsAreBitIdentical() throws {
        func run(threads: Int) throws -> [[Float]] {
            var rng = PhiloxRandom(seed: 32)
            let w = Tensor(randomNormal: [512, 1024], using: &rng)
            var results: [[Float]] = []
            for index in 0..<3 {
                let optimizer = try Self.optimizers(w.copy())[index].1
                for _ in 0..<3 {
                    try ParallelLoop.withThreads(threads) { try optimizer.step(gradients: [Tensor(randomNormal: w.shape, using: &rng)]) }
                }
                results.append(optimizer.parameters[0].tensor.scalars)
            }
            return results
        }
        #expect(try run(threads: 1) == run(threads: 3))
    }
}
