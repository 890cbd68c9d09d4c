import Testing
import TensorRuntime
import GANFlowTestSupport

/// C[i, j] = sum_k A[i, k] B[k, j] for row-major A [m, k] and B [k, n].
func naiveMatmul(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
    var c = [Float](repeating: 0, count: m * n)
    for i in 0..<m { for j in 0..<n {
        var s: Float = 0
        for p in 0..<k { s += a[i * k + p] * b[p * n + j] }
        c[i * n + j] = s
    } }
    return c
}

/// The row-major transpose of a [rows, cols] matrix.
func naiveTranspose(_ a: [Float], rows: Int, cols: Int) -> [Float] {
    var t = [Float](repeating: 0, count: a.count)
    for i in 0..<rows { for j in 0..<cols { t[j * rows + i] = a[i * cols + j] } }
    return t
}

func expectClose(_ actual: [Float], _ expected: [Float], tolerance: Float = 1e-4,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    let worst = largestDifference(actual, expected, relativeTo: 1)
    #expect(worst <= tolerance, "largest relative error \(worst)", sourceLocation: sourceLocation)
}

@Suite struct MatMulTests {
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func matmulMatchesNaive(transposeA: Bool, transposeB: Bool) throws {
        var rng = PhiloxRandom(seed: 11)
        let (m, k, n) = (3, 5, 4)
        let a = Tensor(randomNormal: transposeA ? [k, m] : [m, k], using: &rng)
        let b = Tensor(randomNormal: transposeB ? [n, k] : [k, n], using: &rng)
        let c = try matmul(a, b, transposeA: transposeA, transposeB: transposeB)
        #expect(c.shape == [m, n])
        let av = transposeA ? naiveTranspose(a.scalars, rows: k, cols: m) : a.scalars
        let bv = transposeB ? naiveTranspose(b.scalars, rows: n, cols: k) : b.scalars
        expectClose(c.scalars, naiveMatmul(av, bv, m: m, k: k, n: n))
    }

    /// Outer products and matrix-vector products (m, k or n of 1, run by a loop rather than
    /// oneDNN) in every transposition, large enough to be split over threads: the naive values,
    /// and the same bits on one thread and on three.
    @Test(arguments: [(64, 1, 4096), (64, 4096, 1), (1, 64, 4096), (1, 1, 7), (37, 300, 1), (1, 300, 37)])
    func vectorProductsMatchNaiveInEveryTransposition(m: Int, k: Int, n: Int) throws {
        var rng = PhiloxRandom(seed: 12)
        for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = Tensor(randomNormal: transposeA ? [k, m] : [m, k], using: &rng)
            let b = Tensor(randomNormal: transposeB ? [n, k] : [k, n], using: &rng)
            let run = { try matmul(a, b, transposeA: transposeA, transposeB: transposeB).scalars }
            let one = try ParallelLoop.withThreads(1, run), three = try ParallelLoop.withThreads(3, run)
            let av = transposeA ? naiveTranspose(a.scalars, rows: k, cols: m) : a.scalars
            let bv = transposeB ? naiveTranspose(b.scalars, rows: n, cols: k) : b.scalars
            expectClose(one, naiveMatmul(av, bv, m: m, k: k, n: n))
            #expect(one == three, "\(m)x\(k)x\(n) transposeA \(transposeA) transposeB \(transposeB)")
        }
        // With a bias, as `linear` (x W^T + b) gives it.
        let x = Tensor(randomNormal: [m, k], using: &rng), w = Tensor(randomNormal: [n, k], using: &rng)
        let bias = Tensor(randomNormal: [n], using: &rng)
        let expected = naiveMatmul(x.scalars, naiveTranspose(w.scalars, rows: n, cols: k), m: m, k: k, n: n)
            .enumerated().map { $0.element + bias.scalars[$0.offset % n] }
        expectClose(try linear(x, weight: w, bias: bias).scalars, expected)
    }

    @Test func batchedMatmulMatchesNaivePerBatch() throws {
        var rng = PhiloxRandom(seed: 12)
        let a = Tensor(randomNormal: [2, 3, 4], using: &rng)
        let b = Tensor(randomNormal: [2, 2, 4], using: &rng)
        let c = try matmul(a, b, transposeB: true)
        #expect(c.shape == [2, 3, 2])
        let av = a.scalars, bv = b.scalars
        for i in 0..<2 {
            let expected = naiveMatmul(Array(av[(i * 12)..<(i * 12 + 12)]),
                                       naiveTranspose(Array(bv[(i * 8)..<(i * 8 + 8)]), rows: 2, cols: 4),
                                       m: 3, k: 4, n: 2)
            expectClose(Array(c.scalars[(i * 6)..<(i * 6 + 6)]), expected)
        }
    }

    @Test func linearIsInputTimesWeightTransposedPlusBias() throws {
        var rng = PhiloxRandom(seed: 13)
        let x = Tensor(randomNormal: [4, 3], using: &rng)
        let w = Tensor(randomNormal: [2, 3], using: &rng)
        let b = Tensor(randomNormal: [2], using: &rng)
        let y = try linear(x, weight: w, bias: b)
        #expect(y.shape == [4, 2])
        var expected = naiveMatmul(x.scalars, naiveTranspose(w.scalars, rows: 2, cols: 3), m: 4, k: 3, n: 2)
        for i in 0..<4 { for j in 0..<2 { expected[i * 2 + j] += b.scalars[j] } }
        expectClose(y.scalars, expected)
        expectClose(try linear(x, weight: w).scalars,
                    naiveMatmul(x.scalars, naiveTranspose(w.scalars, rows: 2, cols: 3), m: 4, k: 3, n: 2))
    }

    @Test func gramMatchesNaive() throws {
        var rng = PhiloxRandom(seed: 14)
        let f = Tensor(randomNormal: [2, 3, 2, 2], using: &rng)
        let g = try gram(f, normalizer: 12)
        #expect(g.shape == [2, 3, 3])
        let v = f.scalars, gv = g.scalars
        for n in 0..<2 { for i in 0..<3 { for j in 0..<3 {
            var s: Float = 0
            for p in 0..<4 { s += v[n * 12 + i * 4 + p] * v[n * 12 + j * 4 + p] }
            #expect(abs(gv[n * 9 + i * 3 + j] - s / 12) < 1e-5)
        } } }
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func matmulGradients(transposeA: Bool, transposeB: Bool) throws {
        var rng = PhiloxRandom(seed: 15)
        let a = Tensor(randomNormal: transposeA ? [4, 3] : [3, 4], using: &rng)
        let b = Tensor(randomNormal: transposeB ? [2, 4] : [4, 2], using: &rng)
        let r = Tensor(randomNormal: [3, 2], using: &rng)
        let err = try GradientCheck.firstOrderError([a, b]) { t in
            try (matmul(t[0], t[1], transposeA: transposeA, transposeB: transposeB) * r).sum()
        }
        #expect(err < 1e-2)
    }

    @Test func batchedMatmulGradients() throws {
        var rng = PhiloxRandom(seed: 16)
        let a = Tensor(randomNormal: [2, 4, 3], using: &rng)
        let b = Tensor(randomNormal: [2, 4, 2], using: &rng)
        let r = Tensor(randomNormal: [2, 3, 2], using: &rng)
        let err = try GradientCheck.firstOrderError([a, b]) { t in
            try (matmul(t[0], t[1], transposeA: true) * r).sum()
        }
        #expect(err < 1e-2)
    }

    @Test func linearGradients() throws {
        var rng = PhiloxRandom(seed: 17)
        let x = Tensor(randomNormal: [3, 4], using: &rng)
        let w = Tensor(randomNormal: [2, 4], using: &rng)
        let b = Tensor(randomNormal: [2], using: &rng)
        let r = Tensor(randomNormal: [3, 2], using: &rng)
        let err = try GradientCheck.firstOrderError([x, w, b]) { t in
            try (linear(t[0], weight: t[1], bias: t[2]) * r).sum()
        }
        #expect(err < 1e-2)
    }

    @Test func linearSecondOrder() throws {
        var rng = PhiloxRandom(seed: 18)
        let x = Tensor(randomNormal: [3, 4], using: &rng)
        let w = Tensor(randomNormal: [2, 4], std: 0.5, using: &rng)
        let b = Tensor(randomNormal: [2], using: &rng)
        let err = try GradientCheck.secondOrderError([x, w, b]) { t in
            let y = try linear(t[0], weight: t[1], bias: t[2])
            return try (y * y * y).sum()
        }
        #expect(err < 2e-2)
    }

    @Test func gramGradients() throws {
        var rng = PhiloxRandom(seed: 19)
        let f = Tensor(randomNormal: [2, 3, 2, 2], using: &rng)
        let r = Tensor(randomNormal: [2, 3, 3], using: &rng)
        let err = try GradientCheck.firstOrderError([f]) { t in try (gram(t[0], normalizer: 4) * r).sum() }
        #expect(err < 1e-2)
    }

    @Test func weightGradientIsNotComputedWhenOnlyTheInputsIsAsked() throws {
        // Sizes used by no other test, so the primitive cache shows what this one created.
        var rng = PhiloxRandom(seed: 20)
        let x = Tensor(randomNormal: [7, 5], using: &rng).requiringGradients()
        let w = Tensor(randomNormal: [6, 5], using: &rng).requiringGradients()
        let y = try linear(x, weight: w).sum()
        let gx = try gradients(of: y, wrt: [x])[0]
        let column = try w.sum(axes: [0]).scalars
        for i in 0..<7 { expectClose(Array(gx.scalars[(i * 5)..<(i * 5 + 5)]), column) }
        let created = DNNLDiagnostics.choices.map(\.primitive)
        #expect(created.contains("matmul m 7 k 6 n 5"))
        #expect(!created.contains("matmul m 6 k 7 n 5 A^T"), "dW = g^T x was computed although not asked for")
    }

    @Test func probesWhichDataTypesTheCPUHasKernelsFor() throws {
        // f32 always has JIT kernels on x86-64; bf16 depends on the CPU (AVX-512 or AMX), so only
        // its consistency is checked: both primitives are offered or neither, never a ref: loop.
        let f32 = DNNLDiagnostics.implementations(dataType: .f32)
        let conv = try #require(f32.convolution), mm = try #require(f32.matmul)
        #expect(!conv.hasPrefix("ref:") && !mm.hasPrefix("ref:"), "\(conv), \(mm)")
        #expect(!DNNLDiagnostics.effectiveISA.isEmpty)
        let bf16 = DNNLDiagnostics.implementations(dataType: .bf16)
        if let c = bf16.convolution { #expect(!c.hasPrefix("ref:")) }
    }

    @Test func shapeErrorsNameBothShapes() throws {
        let a = Tensor(zeros: [2, 3]), b = Tensor(zeros: [4, 5])
        #expect(throws: TensorError("matmul: shapes [2, 3] and [4, 5] do not match (inner dimensions 3 and 4)")) {
            try matmul(a, b)
        }
        #expect(throws: TensorError("matmul: shapes [2, 3, 4] and [3, 4, 5] do not match (batch sizes 2 and 3)")) {
            try matmul(Tensor(zeros: [2, 3, 4]), Tensor(zeros: [3, 4, 5]))
        }
        #expect(throws: TensorError("matmul: shapes [2, 3] and [2, 3, 4] do not match (expected two 2-D or two 3-D tensors)")) {
            try matmul(a, Tensor(zeros: [2, 3, 4]))
        }
        #expect(throws: TensorError("linear: shapes [2, 3] and [4, 5] do not match (input has 3 features, weight expects 5)")) {
            try linear(a, weight: b)
        }
        #expect(throws: TensorError("linear: shapes [4, 3] and [5] do not match (bias must be [4])")) {
            try linear(a, weight: Tensor(zeros: [4, 3]), bias: Tensor(zeros: [5]))
        }
        #expect(throws: TensorError("gram: features [2, 3, 4] must be [N, C, H, W]")) {
            try gram(Tensor(zeros: [2, 3, 4]), normalizer: 1)
        }
    }
}
