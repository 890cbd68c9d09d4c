import PipelineGraph
import TensorRuntime

/// Kernel Inception Distance (Binkowski et al., 2018) on feature sets: the unbiased estimate of
/// the squared maximum mean discrepancy with the cubic polynomial kernel
///
///     k(x, y) = (x . y / d + 1)^3,
///
/// averaged over random subsets. Unlike the Frechet distance, the estimate is unbiased, so it
/// compares fairly across sample sizes and its mean over subsets is 0 when both sets come from one
/// distribution.
public enum KernelDistance {
    /// The unbiased MMD^2 between the rows of `x` [m, d] and `y` [n, d] (m, n >= 2):
    /// the means of k over distinct pairs within each set, minus twice the mean across sets.
    public static func unbiasedMMD2(_ x: Tensor, _ y: Tensor) throws -> Double {
        guard x.rank == 2, y.rank == 2, x.shape[1] == y.shape[1], x.shape[0] >= 2, y.shape[0] >= 2 else {
            throw TensorError("KID: expected two feature sets [m, d] and [n, d] with at least 2 rows, found \(describe(x.shape)) and \(describe(y.shape))")
        }
        let d = Float(x.shape[1])
        let m = Double(x.shape[0]), n = Double(y.shape[0])
        func kernelSum(_ a: Tensor, _ b: Tensor, skipDiagonal: Bool) throws -> Double {
            // Read in place: a copy (`scalars`) of each 4 MB product cost more than the product.
            let dots = try matmul(a, b, transposeB: true)
            let rows = dots.shape[0], columns = dots.shape[1]
            return dots.withUnsafeScalars { scalars in
                let p = scalars.baseAddress!
                var total: Double = 0
                for i in 0..<rows { total += cubedSum(p + i * columns, count: columns, d: d) }
                if skipDiagonal {
                    for i in 0..<min(rows, columns) { total -= cubedSum(p + i * columns + i, count: 1, d: d) }
                }
                return total
            }
        }
        let xx = try kernelSum(x, x, skipDiagonal: true) / (m * (m - 1))
        let yy = try kernelSum(y, y, skipDiagonal: true) / (n * (n - 1))
        let xy = try kernelSum(x, y, skipDiagonal: false) / (m * n)
        return xx + yy - 2 * xy
    }

    /// The sum of (p[j] / d + 1)^3 over `count` dot products, in Double, eight lanes at a time:
    /// the polynomial kernel of one row.
    @inline(__always)
    static func cubedSum(_ p: UnsafePointer<Float>, count: Int, d: Float) -> Double {
        var lanes = SIMD8<Double>()
        var j = 0
        while j + 8 <= count {
            let base = SIMD8<Double>(UnsafeRawPointer(p + j).loadUnaligned(as: SIMD8<Float>.self) / d + 1)
            lanes += base * base * base
            j += 8
        }
        var total = lanes.sum()
        while j < count {
            let base = Double(p[j] / d + 1)
            total += base * base * base
            j += 1
        }
        return total
    }

    /// The mean and (population) standard deviation of the unbiased MMD^2 over `subsets` random
    /// subsets of `subsetSize` rows drawn without replacement from each set (at most the smaller
    /// set's size), as torch-fidelity and clean-fid report KID.
    public static func kid(_ real: Tensor, _ fake: Tensor, subsets: Int, subsetSize: Int, seed: UInt64)
        throws -> (mean: Double, std: Double) {
        precondition(subsets >= 1)
        let size = min(subsetSize, real.shape[0], fake.shape[0])
        var rng = PhiloxRandom(seed: seed, stream: stableHash("kid subsets"))
        var values: [Double] = []
        for _ in 0..<subsets {
            let x = try rows(real, sample(real.shape[0], size, &rng))
            let y = try rows(fake, sample(fake.shape[0], size, &rng))
            values.append(try unbiasedMMD2(x, y))
        }
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
        return (mean, variance.squareRoot())
    }

    /// `k` distinct indices of `0..<n`, by a partial Fisher-Yates shuffle.
    static func sample(_ n: Int, _ k: Int, _ rng: inout PhiloxRandom) -> [Int] {
        var pool = Array(0..<n)
        for i in 0..<k {
            let j = i + Int((UInt64(rng.next()) &* UInt64(n - i)) >> 32)
            pool.swapAt(i, j)
        }
        return Array(pool[0..<k])
    }

    /// The rows `indices` of a [n, d] tensor.
    static func rows(_ t: Tensor, _ indices: [Int]) throws -> Tensor {
        let d = t.shape[1]
        let out = Tensor(uninitialized: [indices.count, d])
        t.withUnsafeScalars { source in
            for (r, i) in indices.enumerated() {
                precondition(i >= 0 && i < t.shape[0], "row \(i) of \(t.shape[0])")
                (out.data + r * d).update(from: source.baseAddress! + i * d, count: d)
            }
        }
        return out
    }
}
