import Testing
import TensorRuntime
import GANFlowTestSupport

@Suite struct LayoutTests {
    /// [0, 1, 2, ...] in `shape`.
    static func iota(_ shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        return try! Tensor(shape: shape, scalars: (0..<n).map(Float.init))
    }

    /// Row-major flat index of `index` in `shape`.
    static func flat(_ index: [Int], _ shape: [Int]) -> Int {
        zip(index, shape).reduce(0) { $0 * $1.1 + $1.0 }
    }

    /// Every index of `shape`, in row-major order.
    static func indices(_ shape: [Int]) -> [[Int]] {
        shape.reduce([[]]) { acc, d in acc.flatMap { prefix in (0..<d).map { prefix + [$0] } } }
    }

    @Test func permutedIsAViewWithPermutedValues() throws {
        let x = Self.iota([2, 3, 4])
        let p = try x.permuted([2, 0, 1])
        #expect(p.shape == [4, 2, 3])
        #expect(p.storage === x.storage)
        #expect(!p.isContiguous)
        let v = p.scalars
        for idx in Self.indices(p.shape) {
            #expect(v[Self.flat(idx, p.shape)] == Float(Self.flat([idx[1], idx[2], idx[0]], x.shape)))
        }
        // Chained views and negative axes.
        let back = try p.permuted([1, -1, 0])
        #expect(back.shape == x.shape && back.scalars == x.scalars)
    }

    @Test func transposedMatrix() throws {
        let x = Self.iota([2, 3])
        let t = try x.transposed()
        #expect(t.shape == [3, 2])
        #expect(t.scalars == [0, 3, 1, 4, 2, 5])
        #expect(try Self.iota([2, 3, 4]).transposed(0, 2).shape == [4, 3, 2])
        // Elementwise ops on a strided view read it correctly.
        #expect(try (t + Tensor(repeating: 1, shape: [3, 2])).scalars == [1, 4, 2, 5, 3, 6])
    }

    @Test func slicedIsAViewAndContiguousAlongAxisZero() throws {
        let x = Self.iota([4, 3])
        let rows = try x.sliced(axis: 0, 1..<3)
        #expect(rows.shape == [2, 3] && rows.isContiguous && rows.storage === x.storage)
        #expect(rows.scalars == [3, 4, 5, 6, 7, 8])
        let cols = try x.sliced(axis: -1, 1..<3)
        #expect(cols.shape == [4, 2] && !cols.isContiguous && cols.storage === x.storage)
        #expect(cols.scalars == [1, 2, 4, 5, 7, 8, 10, 11])
        // A slice of a permuted view.
        let mixed = try x.transposed().sliced(axis: 1, 2..<4)
        #expect(mixed.scalars == [6, 9, 7, 10, 8, 11])
    }

    @Test func concatMatchesNaive() throws {
        let a = Self.iota([2, 1, 3]), b = Self.iota([2, 2, 3]) + 100
        let c = try Tensor.concat([a, b, a], axis: 1)
        #expect(c.shape == [2, 4, 3])
        let av = a.scalars, bv = b.scalars, cv = c.scalars
        for idx in Self.indices(c.shape) {
            let j = idx[1]
            let expected: Float = j == 0 ? av[Self.flat([idx[0], 0, idx[2]], a.shape)]
                : j < 3 ? bv[Self.flat([idx[0], j - 1, idx[2]], b.shape)]
                : av[Self.flat([idx[0], 0, idx[2]], a.shape)]
            #expect(cv[Self.flat(idx, c.shape)] == expected)
        }
        #expect(try Tensor.concat([a, a]).shape == [4, 1, 3])
        #expect(try Tensor.concat([try a.transposed(1, 2), try a.transposed(1, 2)], axis: -1).scalars
            == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    }

    @Test func paddedMatchesNaiveAndCrops() throws {
        let x = Self.iota([2, 1, 3, 4])
        let p = try x.padded(spatial: 2)
        #expect(p.shape == [2, 1, 7, 8])
        let xv = x.scalars, pv = p.scalars
        for idx in Self.indices(p.shape) {
            let h = idx[2] - 2, w = idx[3] - 2
            let inside = h >= 0 && h < 3 && w >= 0 && w < 4
            let expected = inside ? xv[Self.flat([idx[0], idx[1], h, w], x.shape)] : 0
            #expect(pv[Self.flat(idx, p.shape)] == expected)
        }
        #expect(try p.padded(spatial: -2).scalars == xv)
        // Mixed: crop one side, pad the other, on the last axis only.
        let m = try x.padded([(-1, 2)])
        #expect(m.shape == [2, 1, 3, 5])
        #expect(Array(m.scalars.prefix(10)) == [1, 2, 3, 0, 0, 5, 6, 7, 0, 0])
        #expect(try Self.iota([1, 1, 28, 28]).padded(spatial: 2).shape == [1, 1, 32, 32])
    }

    @Test func flattenedMergesAxes() throws {
        let x = Self.iota([2, 3, 4, 5])
        #expect(try x.flattened(startAxis: 1).shape == [2, 60])
        #expect(try x.flattened().shape == [120])
        #expect(try x.flattened(startAxis: 1, endAxis: 2).shape == [2, 12, 5])
        #expect(try x.permuted([0, 2, 1, 3]).flattened(startAxis: 1).scalars[5] == 20)
    }

    @Test func firstOrderGradients() throws {
        var rng = PhiloxRandom(seed: 31)
        let x = Tensor(randomNormal: [2, 3, 4], using: &rng)
        let y = Tensor(randomNormal: [2, 2, 4], using: &rng)
        let w = Tensor(randomNormal: [4, 2, 3], using: &rng)
        let cases: [(String, ([Tensor]) throws -> Tensor)] = [
            ("permute", { t in (try t[0].permuted([2, 0, 1]) * w).sum() }),
            ("slice", { t in (try t[0].sliced(axis: 1, 1..<3) * t[0].sliced(axis: 1, 0..<2)).sum() }),
            ("concat", { t in (try Tensor.concat([t[0], t[1], t[0]], axis: 1).square()).sum() }),
            ("pad", { t in (try t[0].padded([(1, 2), (-1, 1)]).square() * 0.5).sum() }),
            ("flatten", { t in (try t[0].flattened(startAxis: 1).square()).sum() }),
        ]
        for (name, f) in cases {
            let err = try GradientCheck.firstOrderError([x.copy(), y.copy()], f)
            #expect(err < 1e-2, "\(name): \(err)")
        }
    }

    @Test func secondOrderGradients() throws {
        var rng = PhiloxRandom(seed: 32)
        let x = Tensor(randomNormal: [2, 3, 4], using: &rng)
        let cases: [(String, ([Tensor]) throws -> Tensor)] = [
            ("permute", { t in (try t[0].permuted([1, 2, 0]).pow(3)).sum() }),
            ("slice", { t in (try t[0].sliced(axis: 2, 1..<4).pow(3)).sum() }),
            ("concat", { t in (try Tensor.concat([t[0], t[0].tanh()], axis: 0).pow(3)).sum() }),
            ("pad", { t in (try t[0].padded([(2, -1)]).pow(3)).sum() }),
        ]
        for (name, f) in cases {
            let err = try GradientCheck.secondOrderError([x.copy()], f)
            #expect(err < 2e-2, "\(name): \(err)")
        }
    }

    @Test func backwardRulesLandInTheRightPlaces() throws {
        let x = Self.iota([3, 4]).requiringGradients()
        let g = try gradients(of: try x.sliced(axis: 1, 1..<3).sum(), wrt: [x])[0]
        #expect(g.scalars == [0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0])
        let a = Self.iota([2]).requiringGradients(), b = Self.iota([3]).requiringGradients()
        let weights = try Tensor(shape: [5], scalars: [1, 2, 3, 4, 5])
        let gs = try gradients(of: (try Tensor.concat([a, b]) * weights).sum(), wrt: [a, b])
        #expect(gs[0].scalars == [1, 2] && gs[1].scalars == [3, 4, 5])
    }

    @Test func invalidArgumentsAreErrorsNamingShapes() {
        let x = Tensor(zeros: [2, 3])
        #expect(throws: TensorError("permute: [0, 0] is not a permutation of the axes of shape [2, 3]")) {
            try x.permuted([0, 0])
        }
        #expect(throws: TensorError("transpose: expected a 2-D tensor, got shape [2, 3, 4]")) {
            try Tensor(zeros: [2, 3, 4]).transposed()
        }
        #expect(throws: TensorError("slice: axis 2 is out of range for shape [2, 3]")) {
            try x.sliced(axis: 2, 0..<1)
        }
        #expect(throws: TensorError("slice: range 1..<4 is out of bounds for axis 1 of shape [2, 3]")) {
            try x.sliced(axis: 1, 1..<4)
        }
        #expect(throws: TensorError("concat: shapes [2, 3] and [3, 3] do not match (except along axis 1)")) {
            try Tensor.concat([x, Tensor(zeros: [3, 3])], axis: 1)
        }
        #expect(throws: TensorError("concat: shapes [2, 3] and [2, 3, 1] do not match (except along axis 0)")) {
            try Tensor.concat([x, Tensor(zeros: [2, 3, 1])])
        }
        #expect(throws: TensorError("concat: axis -3 is out of range for shape [2, 3]")) {
            try Tensor.concat([x, x], axis: -3)
        }
        #expect(throws: TensorError("concat: no tensors to join")) { try Tensor.concat([]) }
        #expect(throws: TensorError("pad: padding (-2, -2) leaves a negative size on axis 1 of shape [2, 3]")) {
            try x.padded([(-2, -2)])
        }
        #expect(throws: TensorError("pad: 3 axes of padding for shape [2, 3]")) {
            try x.padded([(1, 1), (1, 1), (1, 1)])
        }
        #expect(throws: TensorError("flatten: start axis 1 comes after end axis 0 in shape [2, 3]")) {
            try x.flattened(startAxis: 1, endAxis: 0)
        }
    }
}
