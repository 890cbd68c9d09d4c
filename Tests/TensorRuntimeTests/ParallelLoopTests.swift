import CDNNL
import GANFlowTestSupport
import Testing
@testable import TensorRuntime

/// Memory-bound loops split over the OpenMP team (`ParallelLoop`) give the same bits as one
/// thread: every element, and every channel's sum, is computed by one thread in serial order.
struct ParallelLoopTests {
    @Test func chunksCoverTheRangeOnceOnSeveralThreads() {
        for threads in [1, 2, 3] {
            for count in [0, 1, 2, 5, 1000] {
                var hits = [Int](repeating: 0, count: count)
                var workers = Set<Int32>()
                let lock = Locked(())
                hits.withUnsafeMutableBufferPointer { h in
                    ParallelLoop.withThreads(threads) {
                        ParallelLoop.chunks(count, bytes: ParallelLoop.minimumBytes) { range in
                            lock.withLock { _ in workers.insert(omp_get_thread_num()) }
                            for i in range { h[i] += 1 }
                        }
                    }
                }
                #expect(hits.allSatisfy { $0 == 1 }, "threads \(threads), count \(count)")
                #expect(workers.count == min(threads, max(count, 1)) || count == 0, "threads \(threads), count \(count): \(workers)")
            }
        }
        // Small work runs inline, on the calling thread alone.
        var calls = 0
        ParallelLoop.withThreads(3) { ParallelLoop.chunks(100, bytes: ParallelLoop.minimumBytes - 1) { _ in calls += 1 } }
        #expect(calls == 1)
    }

    /// Batch norm with a leaky ReLU (its forward, running statistics and fused backward) and the
    /// leaky ReLU's gradient, on 2 MB activations: three threads against one, bit for bit.
    @Test func batchNormAndActivationGradientAreBitIdenticalToOneThread() throws {
        try Self.expectSameBitsOnOneAndThreeThreads {
            var rng = PhiloxRandom(seed: 41)
            let x = Tensor(randomNormal: [64, 32, 16, 16], using: &rng).requiringGradients()
            let weight = Tensor(randomNormal: [32], using: &rng).requiringGradients()
            let bias = Tensor(randomNormal: [32], using: &rng).requiringGradients()
            let runningMean = Tensor(zeros: [32]), runningVar = Tensor(repeating: 1, shape: [32])
            let seed = Tensor(randomNormal: [64, 32, 16, 16], using: &rng)
            let y = try x.batchNorm(weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                                    training: true, leakySlope: 0.2)
            let grads = try gradients(of: y, wrt: [x, weight, bias], seed: seed)
            let mask = try leakyGradient(seed, output: y, slope: 0.2, gain: 1.4)
            return [y] + grads + [runningMean, runningVar, mask]
        }
    }

    /// StyleGAN2's bias with activation and its FIR upsampling (forward and backward), on 4 MB
    /// activations: three threads against one, bit for bit.
    @Test func biasActivationAndFIRAreBitIdenticalToOneThread() throws {
        try Self.expectSameBitsOnOneAndThreeThreads {
            var rng = PhiloxRandom(seed: 42)
            let x = Tensor(randomNormal: [32, 32, 32, 32], using: &rng).requiringGradients()
            let bias = Tensor(randomNormal: [32], using: &rng).requiringGradients()
            let y = try biasActivation(x, bias: bias)
            let up = try y.upfirdn2d(.binomial, up: 2, padding: (before: 2, after: 1), gain: 4)
            let seed = Tensor(randomNormal: up.shape, using: &rng)
            return [y, up] + (try gradients(of: up, wrt: [x, bias], seed: seed))
        }
    }

    /// Runs `compute` with the loops on one thread and on three, and expects every result the same to the bit.
    static func expectSameBitsOnOneAndThreeThreads(
        _ compute: () throws -> [Tensor], sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let serial = try ParallelLoop.withThreads(1) { try compute().map(\.scalars) }
        let split = try ParallelLoop.withThreads(3) { try compute().map(\.scalars) }
        #expect(serial.count == split.count, sourceLocation: sourceLocation)
        for (i, (a, b)) in zip(serial, split).enumerated() {
            #expect(a == b, "result \(i) differs between 1 and 3 threads", sourceLocation: sourceLocation)
        }
    }
}
