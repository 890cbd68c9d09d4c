import Foundation
import ImageIO
import NeuralNet
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

/// The metrics at Inception's size (LAPACK beyond 256 dimensions), the Inception Score, reference
/// statistics in .npz files, and scoring with the (reduced-width) FID Inception.
@Suite struct InceptionMetricsTests {
    @Test func lapackAndJacobiAgree() throws {
        let n = 40
        let a = MetricMathTests.randomCovariance(n, seed: 5, shift: -3)
        let jacobi = SymmetricEigen(jacobi: a, n: n), lapack = try SymmetricEigen(lapack: a, n: n)
        let scale = jacobi.values.map(abs).max()!
        #expect(zip(jacobi.values, lapack.values).allSatisfy { abs($0 - $1) < 1e-12 * scale })
        #expect(try SymmetricEigen.values(a, n: n) == jacobi.values, "up to jacobiLimit, values come from Jacobi")
        let rebuilt = lapack.map { $0 }
        #expect(zip(a, rebuilt).map { abs($0 - $1) }.max()! < 1e-10 * a.map(abs).max()!)
        // Eigenvectors agree up to sign (the eigenvalues are distinct).
        for c in 0..<n {
            let dot = (0..<n).reduce(0.0) { $0 + jacobi.vectors[$1 * n + c] * lapack.vectors[$1 * n + c] }
            #expect(abs(abs(dot) - 1) < 1e-9)
        }
    }

    @Test func frechetDistanceBeyondJacobiLimitGoesThroughLAPACK() throws {
        // Diagonal covariances in 300 dimensions: |mu1 - mu2|^2 + sum (sqrt a - sqrt b)^2.
        let d = 300
        var c1 = [Double](repeating: 0, count: d * d), c2 = c1
        var expected = 0.0
        for i in 0..<d {
            c1[i * d + i] = Double(i % 7 + 1)
            c2[i * d + i] = Double(i % 5) / 2
            expected += pow(c1[i * d + i].squareRoot() - c2[i * d + i].squareRoot(), 2)
        }
        let mu1 = (0..<d).map { Double($0 % 3) }, mu2 = [Double](repeating: 1, count: d)
        expected += zip(mu1, mu2).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        let fd = try FrechetDistance.distance(GaussianStatistics(mean: mu1, covariance: c1), GaussianStatistics(mean: mu2, covariance: c2))
        #expect(abs(fd - expected) < 1e-9 * expected, "\(fd) vs \(expected)")
        // And a correlated set against itself.
        var rng = PhiloxRandom(seed: 4)
        let x = try matmul(Tensor(randomNormal: [600, d], using: &rng), Tensor(randomNormal: [d, d], using: &rng))
        let s = try GaussianStatistics(features: x)
        #expect(abs(try FrechetDistance.distance(s, s)) < 1e-9 * DenseMatrix.trace(s.covariance, n: d))
    }

    @Test func rankDeficientCovariancesMatchTheEigenForm() throws {
        // 10 samples in 30 dimensions (rank 9) against 50: the pivoted Cholesky route against
        // tr (S1^(1/2) S2 S1^(1/2))^(1/2) from Jacobi decompositions, in both orders.
        let d = 30
        var rng = PhiloxRandom(seed: 9)
        let few = try GaussianStatistics(features: Tensor(randomNormal: [10, d], using: &rng))
        let many = try GaussianStatistics(features: Tensor(randomNormal: [50, d], std: 2, using: &rng) + 0.5)
        for (a, b) in [(few, many), (many, few)] {
            let root = SymmetricEigen(jacobi: a.covariance, n: d).map { max($0, 0).squareRoot() }
            let middle = DenseMatrix.multiply(DenseMatrix.multiply(root, b.covariance, n: d), root, n: d)
            let traceRoot = SymmetricEigen(jacobi: middle, n: d).values.reduce(0) { $0 + max($1, 0).squareRoot() }
            let meanTerm = zip(a.mean, b.mean).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            let expected = meanTerm + DenseMatrix.trace(a.covariance, n: d) + DenseMatrix.trace(b.covariance, n: d) - 2 * traceRoot
            let fd = try FrechetDistance.distance(a, b)
            // The two routes treat the null space differently (clamped eigenvalues against a truncated
            // factor): rounding-level eigenvalues enter under a square root, so agreement is ~sqrt(eps).
            #expect(abs(fd - expected) < 1e-7 * expected, "\(fd) vs \(expected)")
        }
    }

    @Test func covarianceIsNumPysUnbiasedOne() throws {
        let x = try Tensor(shape: [3, 2], scalars: [1, 2, 3, 5, 5, 11])
        let s = try GaussianStatistics(features: x)
        #expect(s.mean == [3, 6])
        // numpy.cov([[1, 3, 5], [2, 5, 11]]) = [[4, 9], [9, 21]].
        #expect(s.covariance == [4, 9, 9, 21])
    }

    @Test func inceptionScoreOfKnownPredictions() throws {
        // Confident predictions spread evenly over c classes score c; identical predictions score 1.
        let classes = 5, n = 100
        var confident = [Float](repeating: -30, count: n * classes)
        for i in 0..<n { confident[i * classes + i % classes] = 30 }
        let spread = try InceptionScore.score(logits: Tensor(shape: [n, classes], scalars: confident), splits: 10, shuffle: false)
        #expect(abs(spread.mean - 5) < 1e-9 && spread.std < 1e-9)
        let same = try InceptionScore.score(logits: Tensor(shape: [n, classes], scalars: (0..<(n * classes)).map { Float($0 % classes) }), splits: 10)
        #expect(abs(same.mean - 1) < 1e-12 && same.std < 1e-12)
        // Two splits of different class sets: each part's score is its own.
        var halves = [Float](repeating: -30, count: 8 * 4)
        for i in 0..<4 { halves[i * 4 + i % 2] = 30 }          // split 1: classes 0, 1
        for i in 4..<8 { halves[i * 4] = 30 }                  // split 2: class 0 only
        let two = try InceptionScore.score(logits: Tensor(shape: [8, 4], scalars: halves), splits: 2, shuffle: false)
        #expect(abs(two.mean - 1.5) < 1e-9 && abs(two.std - 0.5) < 1e-9)
        #expect(throws: TensorError("Inception Score: 3 samples cannot be cut into 10 splits")) {
            try InceptionScore.score(logits: Tensor(zeros: [3, 4]))
        }
    }

    static func inception() throws -> FIDInception {
        try FIDInception(weights: SafeTensorsArchive(contentsOf: fixture("golden/fid-inception-w16.safetensors")))
    }

    @Test func foldersAndSavedStatisticsGiveTheSameDistance() throws {
        let dir = temporaryDirectory("inception-stats")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let net = try Self.inception()
        let a = try ImageSet(fixture("photos/patches/astronaut"), channels: 3), b = try ImageSet(fixture("photos/patches/coffee"), channels: 3)
        let fromFolders = try Scorecard(images: a, reference: b, network: net, limit: nil, kidSubsets: 10, kidSubsetSize: 20, chunk: 16,
                                        inceptionScore: true)
        let real = try net.extract(b.count, chunk: 16) { try b.images($0) }
        try GaussianStatistics(features: real.features).write(npz: dir + "/b.npz")
        let statistics = try GaussianStatistics(npz: dir + "/b.npz")
        let fromStatistics = try Scorecard(images: a, reference: .statistics(statistics, count: nil), network: net, limit: nil, chunk: 16,
                                           inceptionScore: true)
        #expect(fromFolders.frechetDistance > 0)
        #expect(fromStatistics.frechetDistance == fromFolders.frechetDistance)
        #expect(fromStatistics.kidMean == nil && fromStatistics.precision == nil && fromFolders.kidMean != nil)
        #expect(fromFolders.entries.map(\.0) == ["fid", "kid_mean", "kid_std", "precision", "recall", "is_mean", "is_std"])
        #expect(fromStatistics.inceptionScore!.mean == fromFolders.inceptionScore!.mean)
    }

    @Test func statisticsFilesAreChecked() throws {
        let dir = temporaryDirectory("inception-stats-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fromNumPy = try GaussianStatistics(npz: fixture("golden/fid-stats-d8.npz"))
        #expect(fromNumPy.dimension == 8 && fromNumPy.mean[7] == 0.75 && fromNumPy.covariance[9] == 1 / 3.0 + 1)
        try NumPyArchive.write([("mu", NumPyArray(shape: [3], values: [0, 0, 0])), ("sigma", NumPyArray(shape: [2, 2], values: [1, 0, 0, 1]))],
                               to: dir + "/bad.npz")
        #expect(throws: ImageIOError(path: dir + "/bad.npz", "'sigma' has shape [2, 2], expected [3, 3] to match 'mu' [3]")) {
            try GaussianStatistics(npz: dir + "/bad.npz")
        }
    }

    static let stages = """
        "data": { "type": "dataset.images", "path": "\(fixture("photos/patches"))", "batch": 8, "size": 64, "channels": 3 },
        "z": { "type": "noise.normal", "dim": 16, "batch": 8 },
        "G": { "type": "generator.dcgan", "input": "z.samples", "resolution": 64, "channels": 3, "width": 8 },
        "inception": { "type": "features.inception", "weights": "\(fixture("golden/fid-inception-w16.safetensors"))",
                       "generator": "G", "reference": "data", "count": 12, "referenceCount": 12, "chunk": 6 },
        "fid": { "type": "metric.fid", "real": "inception.real", "fake": "inception.fake" },
        "is": { "type": "metric.is", "logits": "inception.fakeLogits", "splits": 3 }
        """

    @Test func inceptionStagesEvaluateInAPipeline() throws {
        let p = try pipeline(stages: Self.stages + #", "idle": { "type": "test.idle" }"#, schedule: #"[{ "run": "idle" }]"#)
        let e = Evaluator(pipeline: p, kind: .serial)
        let values = try e.evaluate(["fid": ["distance"], "is": ["mean", "std"]], step: 1, index: 0, mode: .sample)
        let fid = values[Wire(stage: "fid", port: "distance")]!.number!, isMean = values[Wire(stage: "is", port: "mean")]!.number!
        #expect(fid > 0 && fid.isFinite)
        #expect(isMean >= 1 && isMean <= 10)
    }

    @Test func missingInceptionWeightsAreNamed() throws {
        let missing = Self.stages.replacingOccurrences(of: fixture("golden/fid-inception-w16.safetensors"), with: "/nonexistent/fid-inception.safetensors")
        #expect(problems(stages: missing)
                == ["$.stages.inception.weights: no such file or folder: /nonexistent/fid-inception.safetensors; features.inception needs pytorch-fid's FID Inception weights, which GANFlow does not ship or download: convert pt_inception-2015-12-05-6726825d.pth with Scripts/convert_fid_inception.py (README, \"Metrics in any image domain\")"])
        let few = Self.stages.replacingOccurrences(of: #""splits": 3"#, with: #""splits": 13"#)
        #expect(problems(stages: few) == ["$.stages.is.splits: 12 samples cannot be cut into 13 splits"])
    }
}
