import GANFlowTestSupport
import Testing
import TensorRuntime

/// Data-parallel building blocks, with ranks as threads (`ThreadedCommunicatorGroup`).
@Suite struct DataParallelTests {
    static func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = PhiloxRandom(seed: seed, stream: 1, counter: 0)
        return Tensor(randomNormal: shape, using: &rng)
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        largestDifference(a, b)
    }

    @Test func readyReportsEveryTargetOnceWithItsFinalGradientLastLayerFirst() throws {
        let w1 = Self.random([3, 4], seed: 1).requiringGradients()
        let w2 = Self.random([2, 3], seed: 2).requiringGradients()
        let unused = Self.random([5], seed: 3).requiringGradients()
        let x = Self.random([4, 6], seed: 4)
        // w1 is used twice, so its gradient is complete only after both uses.
        let h = try (matmul(w1, x) + matmul(w1, x)).relu()
        let loss = try matmul(w2, h).sum()
        var seen: [(Int, [Float])] = []
        let grads = try gradients(of: loss, wrt: [w1, w2, unused], ready: { i, g in seen.append((i, g.scalars)) })
        #expect(seen.map(\.0) == [1, 0, 2])
        for (i, g) in seen { #expect(g == grads[i].scalars) }
        #expect(seen[2].1 == [Float](repeating: 0, count: 5))
    }

    @Test func gradientAllreduceAveragesOverRanksInBucketsLastParameterFirst() throws {
        // Two parameters of 12 and 6 floats in buckets of 32 bytes: w2 alone is sent first.
        let w1 = Self.random([3, 4], seed: 1), w2 = Self.random([2, 3], seed: 2)
        let x = Self.random([8, 4], seed: 5)
        // A mean over the samples, as losses are: the ranks' means average to the whole's.
        @Sendable func loss(_ a: Tensor, _ b: Tensor, rows: Range<Int>) throws -> Tensor {
            let h = try matmul(x.sliced(axis: 0, rows), a, transposeB: true).tanh()
            return try matmul(h, b, transposeB: true).mean()
        }
        let p1 = w1.copy().requiringGradients(), p2 = w2.copy().requiringGradients()
        let whole = try gradients(of: try loss(p1, p2, rows: 0..<8), wrt: [p1, p2])

        let group = ThreadedCommunicatorGroup(size: 2)
        let averaged = try group.run { comm -> [[Float]] in
            let a = w1.copy().requiringGradients(), b = w2.copy().requiringGradients()
            let reducer = GradientAllreduce(shapes: [[3, 4], [2, 3]], communicator: comm, bucketBytes: 32, label: "test")
            #expect(reducer.bucketSizes == [6, 12])
            let shard = comm.rank * 4 ..< (comm.rank + 1) * 4
            return try reducer.gradients(of: try loss(a, b, rows: shard), wrt: [a, b]).map(\.scalars)
        }
        for rank in 0..<2 {
            for i in 0..<2 {
                #expect(Self.maxDifference(averaged[rank][i], whole[i].scalars) < 1e-6, "rank \(rank) parameter \(i)")
            }
        }
    }

    @Test func synchronizedBatchNormOverTwoRanksEqualsTheWholeBatch() throws {
        let x = Self.random([8, 3, 4, 4], seed: 11)
        let r = Self.random([8, 3, 4, 4], seed: 12)
        let weight = Self.random([3], seed: 13), bias = Self.random([3], seed: 14)
        @Sendable func run(_ x: Tensor, _ r: Tensor, _ comm: (any Communicator)?) throws -> (y: [Float], dx: [Float], dw: [Float], db: [Float], mean: [Float], variance: [Float]) {
            let input = x.copy().requiringGradients()
            let w = weight.copy().requiringGradients(), b = bias.copy().requiringGradients()
            let rm = Tensor(zeros: [3]), rv = Tensor(repeating: 1, shape: [3])
            let y = try input.batchNorm(weight: w, bias: b, runningMean: rm, runningVar: rv, training: true, synchronizer: comm)
            let g = try gradients(of: try (y * r).sum(), wrt: [input, w, b])
            return (y.scalars, g[0].scalars, g[1].scalars, g[2].scalars, rm.scalars, rv.scalars)
        }
        let whole = try run(x, r, nil)
        let group = ThreadedCommunicatorGroup(size: 2)
        let parts = try group.run { comm in
            let rows = comm.rank * 4 ..< (comm.rank + 1) * 4
            let result = try run(try x.sliced(axis: 0, rows).copy(), try r.sliced(axis: 0, rows).copy(), comm)
            return [result.y, result.dx, result.dw, result.db, result.mean, result.variance]
        }
        #expect(Self.maxDifference(parts[0][0] + parts[1][0], whole.y) < 1e-5)
        #expect(Self.maxDifference(parts[0][1] + parts[1][1], whole.dx) < 1e-5)
        // The loss is a sum over the batch, so the ranks' weight gradients add up to the whole's.
        #expect(Self.maxDifference(zip(parts[0][2], parts[1][2]).map(+), whole.dw) < 1e-4)
        #expect(Self.maxDifference(zip(parts[0][3], parts[1][3]).map(+), whole.db) < 1e-4)
        // Running statistics (unbiased variance over the 128 values of the whole batch) agree.
        for p in parts {
            #expect(Self.maxDifference(p[4], whole.mean) < 1e-6)
            #expect(Self.maxDifference(p[5], whole.variance) < 1e-6)
        }
        // Without synchronization each half normalises by its own statistics: a different result.
        let local = try run(try x.sliced(axis: 0, 0..<4).copy(), try r.sliced(axis: 0, 0..<4).copy(), nil)
        #expect(Self.maxDifference(local.y, Array(whole.y[0..<local.y.count])) > 1e-3)
    }
}
