import Testing
import TensorRuntime
import GANFlowTestSupport

@Suite struct ResampleTests {
    static func at(_ v: [Float], _ shape: [Int], _ i: Int, _ c: Int, _ h: Int, _ w: Int) -> Float {
        v[((i * shape[1] + c) * shape[2] + h) * shape[3] + w]
    }

    /// align_corners=False bilinear interpolation, one output pixel at a time.
    static func naiveBilinear(_ x: Tensor, height: Int, width: Int) -> [Float] {
        let s = x.shape, v = x.scalars
        func source(_ o: Int, _ inSize: Int, _ outSize: Int) -> (Int, Int, Float) {
            let real = max((Double(o) + 0.5) * Double(inSize) / Double(outSize) - 0.5, 0)
            let lo = Int(real.rounded(.down))
            let hi = min(lo + 1, inSize - 1)
            return (lo, hi, Float(real - Double(lo)))
        }
        var out: [Float] = []
        for i in 0..<s[0] { for c in 0..<s[1] { for oh in 0..<height { for ow in 0..<width {
            let (h0, h1, fh) = source(oh, s[2], height)
            let (w0, w1, fw) = source(ow, s[3], width)
            let top = (1 - fw) * at(v, s, i, c, h0, w0) + fw * at(v, s, i, c, h0, w1)
            let bottom = (1 - fw) * at(v, s, i, c, h1, w0) + fw * at(v, s, i, c, h1, w1)
            out.append((1 - fh) * top + fh * bottom)
        } } } }
        return out
    }

    @Test func nearestRepeatsPixels() throws {
        var rng = PhiloxRandom(seed: 31)
        let x = Tensor(randomNormal: [2, 3, 3, 2], using: &rng)
        let y = try x.upsampleNearest(factor: 2)
        #expect(y.shape == [2, 3, 6, 4])
        let v = x.scalars, out = y.scalars
        for i in 0..<2 { for c in 0..<3 { for h in 0..<6 { for w in 0..<4 {
            #expect(Self.at(out, y.shape, i, c, h, w) == Self.at(v, x.shape, i, c, h / 2, w / 2))
        } } } }
    }

    @Test func areaAveragesBlocks() throws {
        var rng = PhiloxRandom(seed: 32)
        let x = Tensor(randomNormal: [2, 2, 6, 9], using: &rng)
        let y = try x.downsampleArea(factor: 3)
        #expect(y.shape == [2, 2, 2, 3])
        let v = x.scalars, out = y.scalars
        for i in 0..<2 { for c in 0..<2 { for h in 0..<2 { for w in 0..<3 {
            var total: Float = 0
            for a in 0..<3 { for b in 0..<3 { total += Self.at(v, x.shape, i, c, h * 3 + a, w * 3 + b) } }
            #expect(abs(Self.at(out, y.shape, i, c, h, w) - total / 9) < 1e-6)
        } } } }
    }

    @Test(arguments: [(4, 6, 8, 12), (3, 5, 7, 4), (5, 5, 2, 3), (1, 3, 4, 1)])
    func bilinearMatchesNaive(inHeight: Int, inWidth: Int, height: Int, width: Int) throws {
        var rng = PhiloxRandom(seed: 33)
        let x = Tensor(randomNormal: [2, 2, inHeight, inWidth], using: &rng)
        let y = try x.upsampleBilinear(height: height, width: width)
        #expect(y.shape == [2, 2, height, width])
        for (a, e) in zip(y.scalars, Self.naiveBilinear(x, height: height, width: width)) { #expect(abs(a - e) < 1e-5) }
    }

    @Test(arguments: ["bilinearUp", "bilinearDown", "area", "nearest"])
    func matchesPyTorch(caseName: String) throws {
        let golden = try GoldenFixture.load().named(caseName)
        let x = try golden.tensor("x").requiringGradients()
        let y: Tensor
        switch caseName {
        case "area": y = try x.downsampleArea(factor: golden.int("factor"))
        case "nearest": y = try x.upsampleNearest(factor: golden.int("factor"))
        default: y = try x.upsampleBilinear(height: golden.int("height"), width: golden.int("width"))
        }
        #expect(GoldenFixture.difference(y, try golden.tensor("output")) < 1e-5)
        let dx = try gradients(of: y, wrt: [x], seed: try golden.tensor("upstream"))[0]
        #expect(GoldenFixture.difference(dx, try golden.tensor("dx")) < 1e-5)
    }

    enum Op: String, CaseIterable, Sendable { case nearest, area, bilinearUp, bilinearDown }

    @Test(arguments: Op.allCases)
    func firstAndSecondOrderGradients(op: Op) throws {
        var rng = PhiloxRandom(seed: 34)
        let x = Tensor(randomNormal: [1, 2, 4, 6], using: &rng)
        func apply(_ t: Tensor) throws -> Tensor {
            switch op {
            case .nearest: try t.upsampleNearest(factor: 2)
            case .area: try t.downsampleArea(factor: 2)
            case .bilinearUp: try t.upsampleBilinear(height: 7, width: 9)
            case .bilinearDown: try t.upsampleBilinear(height: 3, width: 4)
            }
        }
        let r = Tensor(randomNormal: try apply(x).shape, using: &rng)
        let f: ([Tensor]) throws -> Tensor = { v in
            let y = try apply(v[0])
            return try (y * y * r).sum()
        }
        #expect(try GradientCheck.firstOrderError([x], f) < 1e-2)
        #expect(try GradientCheck.secondOrderError([x], f) < 2e-2)
    }

    @Test func invalidArgumentsThrow() throws {
        let x = Tensor(zeros: [1, 1, 5, 4])
        #expect(throws: TensorError("downsampleArea: height and width of [1, 1, 5, 4] must be multiples of the factor 2")) {
            try x.downsampleArea(factor: 2)
        }
        #expect(throws: TensorError("upsampleNearest: factor must be positive, got 0")) {
            try x.upsampleNearest(factor: 0)
        }
        #expect(throws: TensorError("upsampleBilinear: expected an input of shape [N, C, H, W], got [5, 4]")) {
            try Tensor(zeros: [5, 4]).upsampleBilinear(height: 10, width: 8)
        }
    }
}
