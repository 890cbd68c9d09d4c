import Foundation
@testable import PipelineStages
import Testing
import TensorRuntime

@Suite struct MetricMathTests {
    /// A random symmetric matrix A = B B^T + shift I (positive definite for shift > 0).
    static func randomCovariance(_ n: Int, seed: UInt64, shift: Double = 0.1) -> [Double] {
        var rng = PhiloxRandom(seed: seed)
        let b = Tensor(randomNormal: [n, n], using: &rng).scalars.map(Double.init)
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { for k in 0..<n { a[i * n + j] += b[i * n + k] * b[j * n + k] } } }
        for i in 0..<n { a[i * n + i] += shift }
        return a
    }

    @Test func jacobiReconstructsTheMatrix() throws {
        let n = 12
        let a = Self.randomCovariance(n, seed: 3, shift: -2)  // indefinite: some eigenvalues negative
        let e = try SymmetricEigen(a, n: n)
        #expect(e.values == e.values.sorted(by: >))
        #expect(e.values.contains { $0 < 0 })
        let rebuilt = e.map { $0 }
        let error = zip(a, rebuilt).map { abs($0 - $1) }.max()!
        #expect(error < 1e-10 * a.map(abs).max()!)
        // V^T V = I.
        for i in 0..<n {
            for j in 0..<n {
                let dot = (0..<n).reduce(0.0) { $0 + e.vectors[$1 * n + i] * e.vectors[$1 * n + j] }
                #expect(abs(dot - (i == j ? 1 : 0)) < 1e-12)
            }
        }
    }

    @Test func jacobiOfADiagonalAndOfA2x2() throws {
        let d = try SymmetricEigen([3, 0, 0, 0, -1, 0, 0, 0, 2], n: 3)
        #expect(d.values == [3, 2, -1])
        // [[2, 1], [1, 2]] has eigenvalues 3 and 1, eigenvectors (1, 1) / sqrt 2 and (1, -1) / sqrt 2.
        let e = try SymmetricEigen([2, 1, 1, 2], n: 2)
        #expect(abs(e.values[0] - 3) < 1e-14 && abs(e.values[1] - 1) < 1e-14)
        #expect(abs(abs(e.vectors[0]) - 0.5.squareRoot()) < 1e-14 && abs(e.vectors[0] - e.vectors[2]) < 1e-14)
    }

    @Test func frechetDistanceOfASetWithItselfIsZero() throws {
        var rng = PhiloxRandom(seed: 11)
        let base = Tensor(randomNormal: [500, 16], using: &rng)
        // Correlated features, as a network's are.
        let mixing = Tensor(randomNormal: [16, 16], using: &rng)
        let x = try matmul(base, mixing) + 3
        let stats = try GaussianStatistics(features: x)
        let self1 = try FrechetDistance.distance(stats, stats)
        let trace = DenseMatrix.trace(stats.covariance, n: 16)
        #expect(abs(self1) < 1e-9 * trace, "FD(x, x) = \(self1) with tr = \(trace)")
        #expect(abs(try FrechetDistance.distance(x, x)) < 1e-9 * trace)
    }

    @Test func frechetDistanceOfKnownGaussians() throws {
        // Diagonal covariances: |mu1 - mu2|^2 + sum (sqrt a - sqrt b)^2.
        let a = GaussianStatistics(mean: [1, 2, 3], covariance: [4, 0, 0, 0, 1, 0, 0, 0, 9])
        let b = GaussianStatistics(mean: [0, 2, 5], covariance: [1, 0, 0, 0, 1, 0, 0, 0, 0.25])
        let expected = (1.0 + 0 + 4) + (1.0 + 0 + 6.25)
        #expect(abs(try FrechetDistance.distance(a, b) - expected) < 1e-12)
        // Covariances that do not commute (2x2): tr sqrt(S1 S2) = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2)).
        let s1 = [2.0, 0.8, 0.8, 1.0], s2 = [1.5, -0.6, -0.6, 0.7]
        let p = DenseMatrix.multiply(s1, s2, n: 2)
        let det1 = s1[0] * s1[3] - s1[1] * s1[2], det2 = s2[0] * s2[3] - s2[1] * s2[2]
        let traceRoot = (p[0] + p[3] + 2 * (det1 * det2).squareRoot()).squareRoot()
        let analytic = (0.5 * 0.5 + 1.0) + (s1[0] + s1[3]) + (s2[0] + s2[3]) - 2 * traceRoot
        let fd = try FrechetDistance.distance(GaussianStatistics(mean: [0.5, 0], covariance: s1),
                                              GaussianStatistics(mean: [0, 1], covariance: s2))
        #expect(abs(fd - analytic) < 1e-12, "\(fd) vs \(analytic)")
    }

    @Test func frechetDistanceOfSamplesApproachesTheAnalyticValue() throws {
        // N(0, I) against N(m, 4 I) in 4 dimensions: |m|^2 + 4 (2 - 1)^2 = 4 + 4.
        var rng = PhiloxRandom(seed: 12)
        let x = Tensor(randomNormal: [20000, 4], using: &rng)
        let y = Tensor(randomNormal: [20000, 4], std: 2, using: &rng) + 1
        let fd = try FrechetDistance.distance(x, y)
        #expect(abs(fd - 8) < 0.25, "\(fd)")
    }

    @Test func kidIsUnbiasedOnEqualDistributions() throws {
        // Fresh samples for every subset, so the estimates are independent: their mean must lie
        // within a few standard errors of 0, where the biased estimate (diagonal included) does not.
        var rng = PhiloxRandom(seed: 21)
        var unbiased: [Double] = [], biased: [Double] = []
        let m = 40, d = 8
        for _ in 0..<200 {
            let x = Tensor(randomNormal: [m, d], using: &rng), y = Tensor(randomNormal: [m, d], using: &rng)
            let u = try KernelDistance.unbiasedMMD2(x, y)
            unbiased.append(u)
            // The V-statistic: every pair, the diagonal k(x_i, x_i) included.
            biased.append(try Self.biasedMMD2(x, y))
        }
        func meanAndError(_ v: [Double]) -> (Double, Double) {
            let mean = v.reduce(0, +) / Double(v.count)
            let variance = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count - 1)
            return (mean, (variance / Double(v.count)).squareRoot())
        }
        let (mu, se) = meanAndError(unbiased)
        let (mb, _) = meanAndError(biased)
        #expect(abs(mu) < 4 * se, "unbiased mean \(mu), standard error \(se)")
        #expect(mb > 4 * se, "the biased estimate \(mb) should stand out against the standard error \(se)")
        // Different distributions give a clearly positive value.
        let x = Tensor(randomNormal: [200, d], using: &rng), y = Tensor(randomNormal: [200, d], using: &rng) + 1
        #expect(try KernelDistance.unbiasedMMD2(x, y) > 20 * se)
    }

    /// The biased MMD^2 (every pair, diagonal included), in Double, for comparison.
    static func biasedMMD2(_ x: Tensor, _ y: Tensor) throws -> Double {
        let d = Double(x.shape[1])
        func k(_ a: [Float], _ b: [Float]) -> Double {
            let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            return Foundation.pow(dot / d + 1, 3)
        }
        func rows(_ t: Tensor) -> [[Float]] {
            let v = t.scalars, n = t.shape[1]
            return (0..<t.shape[0]).map { Array(v[($0 * n)..<(($0 + 1) * n)]) }
        }
        let xs = rows(x), ys = rows(y)
        func mean(_ a: [[Float]], _ b: [[Float]]) -> Double {
            a.reduce(0.0) { s, u in b.reduce(s) { $0 + k(u, $1) } } / Double(a.count * b.count)
        }
        return mean(xs, xs) + mean(ys, ys) - 2 * mean(xs, ys)
    }

    @Test func kidMatchesTheDefinitionOnOneSubset() throws {
        var rng = PhiloxRandom(seed: 22)
        let x = Tensor(randomNormal: [6, 3], using: &rng), y = Tensor(randomNormal: [5, 3], std: 2, using: &rng)
        let xs = x.scalars.map(Double.init), ys = y.scalars.map(Double.init)
        func k(_ a: [Double], _ i: Int, _ b: [Double], _ j: Int) -> Double {
            let dot = (0..<3).reduce(0.0) { $0 + a[i * 3 + $1] * b[j * 3 + $1] }
            return Foundation.pow(dot / 3 + 1, 3)
        }
        var xx = 0.0, yy = 0.0, xy = 0.0
        for i in 0..<6 { for j in 0..<6 where i != j { xx += k(xs, i, xs, j) } }
        for i in 0..<5 { for j in 0..<5 where i != j { yy += k(ys, i, ys, j) } }
        for i in 0..<6 { for j in 0..<5 { xy += k(xs, i, ys, j) } }
        let expected = xx / 30 + yy / 20 - 2 * xy / 30
        let value = try KernelDistance.unbiasedMMD2(x, y)
        #expect(abs(value - expected) < 1e-4 * max(1, abs(expected)), "\(value) vs \(expected)")
        // One subset as large as both sets holds all of each (in another order): the same number.
        let x5 = try KernelDistance.rows(x, Array(0..<5))
        let whole = try KernelDistance.unbiasedMMD2(x5, y)
        let (mean, std) = try KernelDistance.kid(x5, y, subsets: 1, subsetSize: 5, seed: 1)
        #expect(std == 0)
        #expect(abs(mean - whole) < 1e-5 * max(1, abs(whole)), "\(mean) vs \(whole)")
        // And a smaller subset is not (the control: the comparison above can fail).
        let (part, _) = try KernelDistance.kid(x5, y, subsets: 1, subsetSize: 4, seed: 1)
        #expect(abs(part - whole) > 1e-3 * max(1, abs(whole)), "\(part) vs \(whole)")
    }

    /// Sets of 37 and 29 rows: the kernel sums run eight lanes at a time plus a tail, and leave
    /// out the diagonal afterwards; the definition in Double agrees.
    @Test func kidMatchesTheDefinitionOnRowsLongerThanItsLanes() throws {
        var rng = PhiloxRandom(seed: 23)
        let x = Tensor(randomNormal: [37, 5], using: &rng), y = Tensor(randomNormal: [29, 5], std: 1.5, using: &rng)
        func rows(_ t: Tensor) -> [[Double]] {
            let v = t.scalars.map(Double.init), n = t.shape[1]
            return (0..<t.shape[0]).map { Array(v[($0 * n)..<(($0 + 1) * n)]) }
        }
        func k(_ a: [Double], _ b: [Double]) -> Double { Foundation.pow(zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } / 5 + 1, 3) }
        func mean(_ a: [[Double]], _ b: [[Double]], distinct: Bool) -> Double {
            var total = 0.0
            for (i, u) in a.enumerated() { for (j, v) in b.enumerated() where !(distinct && i == j) { total += k(u, v) } }
            return total / Double(a.count * (distinct ? b.count - 1 : b.count))
        }
        let xs = rows(x), ys = rows(y)
        let expected = mean(xs, xs, distinct: true) + mean(ys, ys, distinct: true) - 2 * mean(xs, ys, distinct: false)
        let value = try KernelDistance.unbiasedMMD2(x, y)
        #expect(abs(value - expected) < 1e-5 * max(1, abs(expected)), "\(value) vs \(expected)")
        #expect(abs(expected) > 1e-3, "the sets should differ: \(expected)")
    }

    /// The k-th nearest neighbour's distance by selection equals the sorted row's entry k - 1.
    @Test func kthSmallestIsTheSortedRowsEntry() {
        var rng = PhiloxRandom(seed: 24)
        for (count, k) in [(2, 1), (9, 3), (50, 1), (50, 7), (200, 49)] {
            // Ties too: values from a small set.
            let row = (0..<count).map { _ in Float(rng.next() % 17) }
            for skip in [0, count / 2, count - 1] {
                var rest = row
                rest.remove(at: skip)
                let selected = row.withUnsafeBufferPointer { PrecisionRecall.kthSmallest($0, skipping: skip, k: k) }
                #expect(selected == rest.sorted()[k - 1], "count \(count), k \(k), skip \(skip)")
            }
        }
    }

    @Test func precisionAndRecallOfEqualAndDisjointSets() throws {
        var rng = PhiloxRandom(seed: 31)
        let x = Tensor(randomNormal: [300, 5], using: &rng)
        let same = try PrecisionRecall.compute(real: x, fake: x, k: 3)
        #expect(same.precision == 1 && same.recall == 1)
        let far = x + 100
        let disjoint = try PrecisionRecall.compute(real: x, fake: far, k: 3)
        #expect(disjoint.precision == 0 && disjoint.recall == 0)
        // Samples from a quarter of the real distribution: realistic (high precision) but
        // covering little of it (low recall), the signature of mode dropping.
        let real = Tensor(randomNormal: [1000, 2], using: &rng)
        let narrow = Tensor(randomNormal: [1000, 2], std: 0.25, using: &rng)
        let collapsed = try PrecisionRecall.compute(real: real, fake: narrow, k: 3, block: 128)
        #expect(collapsed.precision > 0.95, "\(collapsed)")
        #expect(collapsed.recall < 0.4, "\(collapsed)")
    }

    @Test func precisionRecallBlocksDoNotChangeTheResult() throws {
        var rng = PhiloxRandom(seed: 32)
        let a = Tensor(randomNormal: [257, 4], using: &rng), b = Tensor(randomNormal: [200, 4], std: 1.3, using: &rng)
        let whole = try PrecisionRecall.compute(real: a, fake: b, k: 5, block: 1024)
        let blocked = try PrecisionRecall.compute(real: a, fake: b, k: 5, block: 7)
        #expect(whole.precision == blocked.precision && whole.recall == blocked.recall)
    }

    @Test func aSingleClassSampleScoresOneMode() throws {
        var logits = [Float](repeating: 0, count: 50 * 10)
        for i in 0..<50 { logits[i * 10 + 3] = 5 }
        let coverage = ModeCoverage(logits: try Tensor(shape: [50, 10], scalars: logits), minShare: 0.01)
        #expect(coverage.modes == 1)
        #expect(coverage.histogram[3] == 50)
        #expect(abs(coverage.klToUniform - Foundation.log(10)) < 1e-12)
    }

    @Test func balancedClassesScoreEveryModeAndRareClassesDoNot() {
        let balanced = ModeCoverage(decisions: (0..<1000).map { $0 % 10 }, classes: 10, minShare: 0.01)
        #expect(balanced.modes == 10)
        #expect(abs(balanced.klToUniform) < 1e-12)
        // Class 9 holds 5 of 1000 samples (0.5%): under the 1% bar.
        let rare = ModeCoverage(decisions: (0..<995).map { $0 % 9 } + [Int](repeating: 9, count: 5), classes: 10, minShare: 0.01)
        #expect(rare.modes == 9)
        #expect(rare.klToUniform > 0)
    }

    @Test func mismatchedFeatureSizesAreErrors() throws {
        #expect(throws: TensorError("Frechet distance: feature sizes 2 and 3 differ")) {
            try FrechetDistance.distance(GaussianStatistics(mean: [0, 0], covariance: [1, 0, 0, 1]),
                                         GaussianStatistics(mean: [0, 0, 0], covariance: [1, 0, 0, 0, 1, 0, 0, 0, 1]))
        }
        #expect(throws: TensorError("feature statistics need at least 2 feature vectors [n, d], found [1, 4]")) {
            try GaussianStatistics(features: Tensor(zeros: [1, 4]))
        }
    }
}
