import Foundation
import TensorRuntime

/// Improved precision and recall (Kynkaanniemi et al., 2019) of generated features against real
/// ones.
///
/// Each set approximates its manifold by balls around its points, each ball reaching the point's
/// k-th nearest neighbour in the same set. Precision is the fraction of generated points inside
/// some real ball (are samples realistic?); recall is the fraction of real points inside some
/// generated ball (is the real variety covered?). Distances are Euclidean, computed in blocks of
/// rows so memory stays at `block` x n.
public enum PrecisionRecall {
    public static func compute(real: Tensor, fake: Tensor, k: Int, block: Int = 1024) throws -> (precision: Double, recall: Double) {
        guard real.rank == 2, fake.rank == 2, real.shape[1] == fake.shape[1] else {
            throw TensorError("precision/recall: expected feature sets [n, d] and [m, d], found \(describe(real.shape)) and \(describe(fake.shape))")
        }
        guard k >= 1, real.shape[0] > k, fake.shape[0] > k else {
            throw TensorError("precision/recall: k = \(k) needs more than \(k) real and generated samples, found \(real.shape[0]) and \(fake.shape[0])")
        }
        let realRadii = try kthNeighbourDistances(real, k: k, block: block)
        let fakeRadii = try kthNeighbourDistances(fake, k: k, block: block)
        let precision = try coveredFraction(fake, by: real, radii: realRadii, block: block)
        let recall = try coveredFraction(real, by: fake, radii: fakeRadii, block: block)
        return (precision, recall)
    }

    /// Squared distance from each row of `points` to its k-th nearest other row.
    static func kthNeighbourDistances(_ points: Tensor, k: Int, block: Int) throws -> [Float] {
        var radii: [Float] = []
        radii.reserveCapacity(points.shape[0])
        try forEachBlock(points, points, block: block) { start, distances, columns in
            for r in 0..<(distances.count / columns) {
                // The point itself sits at distance 0 (up to rounding); leave out exactly its entry.
                radii.append(distances.withUnsafeBufferPointer {
                    kthSmallest(UnsafeBufferPointer(rebasing: $0[(r * columns)..<((r + 1) * columns)]), skipping: start + r, k: k)
                })
            }
        }
        return radii
    }

    /// The k-th smallest value of `row` without its entry `skip`: what sorting the rest and taking
    /// index k - 1 gives, keeping only the k smallest so far instead of sorting the row.
    static func kthSmallest(_ row: UnsafeBufferPointer<Float>, skipping skip: Int, k: Int) -> Float {
        var smallest: [Float] = []
        smallest.reserveCapacity(k)
        for (j, v) in row.enumerated() where j != skip {
            if smallest.count == k {
                guard v < smallest[k - 1] else { continue }
                smallest.removeLast()
            }
            smallest.insert(v, at: smallest.firstIndex { $0 > v } ?? smallest.count)
        }
        return smallest[k - 1]
    }

    /// The fraction of rows of `queries` within `radii[j]` (squared) of some row j of `centres`.
    static func coveredFraction(_ queries: Tensor, by centres: Tensor, radii: [Float], block: Int) throws -> Double {
        var covered = 0
        try forEachBlock(queries, centres, block: block) { _, distances, columns in
            for r in 0..<(distances.count / columns) {
                for j in 0..<columns where distances[r * columns + j] <= radii[j] {
                    covered += 1
                    break
                }
            }
        }
        return Double(covered) / Double(queries.shape[0])
    }

    /// Squared distances between blocks of rows of `a` and all rows of `b`, as
    /// |x|^2 + |y|^2 - 2 x.y (clamped at 0), handed to `body` with the block's first row.
    static func forEachBlock(_ a: Tensor, _ b: Tensor, block: Int, _ body: (Int, [Float], Int) throws -> Void) throws {
        let n = a.shape[0], m = b.shape[0]
        let normsA = squaredNorms(a), normsB = squaredNorms(b)
        // One buffer for every block, and the products read in place: fresh multi-megabyte
        // arrays for each block cost more in page faults than the arithmetic.
        var distances = [Float](repeating: 0, count: min(block, n) * m)
        var start = 0
        while start < n {
            let end = min(start + block, n)
            let product = try matmul(try a.sliced(axis: 0, start..<end), b, transposeB: true)
            if end - start < block { distances.removeLast(distances.count - (end - start) * m) }
            product.withUnsafeScalars { dots in
                distances.withUnsafeMutableBufferPointer { out in
                    for r in 0..<(end - start) {
                        for j in 0..<m {
                            out[r * m + j] = max(normsA[start + r] + normsB[j] - 2 * dots[r * m + j], 0)
                        }
                    }
                }
            }
            try body(start, distances, m)
            start = end
        }
    }

    static func squaredNorms(_ t: Tensor) -> [Float] {
        let d = t.shape[1], v = t.scalars
        return (0..<t.shape[0]).map { i in
            var s: Float = 0
            for j in 0..<d { s += v[i * d + j] * v[i * d + j] }
            return s
        }
    }
}

/// How the classes a classifier sees in generated samples spread: the histogram of its decisions,
/// the number of classes with at least `minShare` of the samples, and the KL divergence of the
/// histogram from the uniform distribution (0 when every class is equally common, log K when all
/// samples fall in one class). A collapsing generator loses modes and its KL rises.
public struct ModeCoverage: Sendable {
    public let histogram: [Int]
    public let modes: Int
    public let klToUniform: Double

    public init(logits: Tensor, minShare: Double) {
        let decisions = ClassScores.argmax(logits)
        self.init(decisions: decisions, classes: logits.shape[1], minShare: minShare)
    }

    public init(decisions: [Int], classes: Int, minShare: Double) {
        var histogram = [Int](repeating: 0, count: classes)
        for c in decisions { histogram[c] += 1 }
        let n = Double(max(decisions.count, 1))
        self.histogram = histogram
        modes = histogram.filter { Double($0) / n >= minShare && $0 > 0 }.count
        klToUniform = histogram.reduce(0) { kl, count in
            guard count > 0 else { return kl }
            let p = Double(count) / n
            return kl + p * Foundation.log(p * Double(classes))
        }
    }
}
