import Foundation
import GANFlowTestSupport
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

@Suite struct AugmentStageTests {
    static let data = #""data": { "type": "dataset.idx", "images": "Fixtures/idx/t10k-256-images-idx3-ubyte.gz", "batch": 8, "size": 16 }"#

    func augment(_ extra: String, inputs: String = #"{ "real": "data.images", "other": "data.images" }"#) throws -> Pipeline {
        try buildPipeline(Self.data + #", "aug": { "type": "augment.diff", "inputs": \#(inputs) \#(extra) }"#, consume: "aug.real")
    }

    func images(_ seed: UInt64 = 3) -> Tensor {
        var rng = PhiloxRandom(seed: seed)
        return Tensor(randomUniform: [8, 3, 16, 16], low: -1, high: 1, using: &rng)
    }

    func apply(_ policy: String, p: Double = 1, x: Tensor, seed: UInt64 = 5) throws -> Tensor {
        var rng = PhiloxRandom(seed: seed)
        return try AugmentPolicy(policy, translation: 0.125, cutout: 0.5).apply(x, p: p, using: &rng)
    }

    /// Image `b` of `x` as rows of pixels per channel.
    func image(_ x: Tensor, _ b: Int) -> [Float] {
        let size = x.shape[1] * x.shape[2] * x.shape[3]
        return Array(x.scalars[(b * size)..<((b + 1) * size)])
    }

    @Test func outputsFollowTheInputs() throws {
        let p = try augment("")
        #expect(p.stage("aug").outputs == ["real": .tensor([8, 1, 16, 16]), "other": .tensor([8, 1, 16, 16])])
        let adaptive = try augment(#", "adaptive": true, "probability": 0"#)
        #expect(adaptive.stage("aug").outputs["p"] == .scalar)
        let out = try adaptive.stage("aug").run(["real"], inputs: ["real": .tensor(images())], stageID: "aug")
        #expect(out["p"]?.number == 0)
        #expect(out["real"]!.tensor!.scalars == images().scalars, "p = 0 leaves images unchanged")
    }

    @Test func flipsMirrorWholeImages() throws {
        let x = images()
        let y = try apply("flip", x: x)
        var flipped = 0
        for b in 0..<8 {
            let original = image(x, b), out = image(y, b)
            var mirrored = original
            for row in 0..<(3 * 16) {
                for col in 0..<16 { mirrored[row * 16 + col] = original[row * 16 + 15 - col] }
            }
            #expect(out == original || out == mirrored)
            if out == mirrored { flipped += 1 }
        }
        #expect(flipped > 0 && flipped < 8)
    }

    @Test func translationShiftsWithZeroFillWithinTheRatio() throws {
        let x = images() + 2  // no zeros inside, so the fill is visible
        let y = try apply("translation", x: x)
        for b in 0..<8 {
            let original = image(x, b), out = image(y, b)
            var found = false
            for dy in -2...2 {
                for dx in -2...2 {
                    var shifted = [Float](repeating: 0, count: original.count)
                    for c in 0..<3 {
                        for r in 0..<16 {
                            for q in 0..<16 where (0..<16).contains(r - dy) && (0..<16).contains(q - dx) {
                                shifted[(c * 16 + r) * 16 + q] = original[(c * 16 + r - dy) * 16 + q - dx]
                            }
                        }
                    }
                    if shifted == out { found = true }
                }
            }
            #expect(found, "image \(b) is a shift of at most 2 pixels (0.125 of 16)")
        }
    }

    @Test func cutoutZeroesOneSquarePerImage() throws {
        let x = images() + 2
        let y = try apply("cutout", x: x)
        for b in 0..<8 {
            let out = image(y, b), original = image(x, b)
            let zeros = out.indices.filter { out[$0] == 0 }
            #expect(!zeros.isEmpty && zeros.count <= 3 * 64, "at most an 8x8 square in each channel")
            for i in out.indices where out[i] != 0 { #expect(out[i] == original[i]) }
            // The same pixels in every channel.
            let plane = Set(zeros.map { $0 % 256 })
            #expect(zeros.count == 3 * plane.count)
        }
    }

    @Test func colorOperationsKeepShapesAndChangeValues() throws {
        let x = images()
        for op in ["brightness", "saturation", "contrast"] {
            let y = try apply(op, x: x)
            #expect(y.shape == x.shape)
            #expect(y.scalars != x.scalars, "\(op)")
        }
        // Brightness adds one offset in [-0.5, 0.5) to every pixel of an image.
        let y = try apply("brightness", x: x)
        for b in 0..<8 {
            let d = zip(image(y, b), image(x, b)).map { $0 - $1 }
            #expect(d.allSatisfy { abs($0 - d[0]) < 1e-5 } && abs(d[0]) <= 0.5)
        }
    }

    @Test func gradientsFlowThroughEveryOperation() throws {
        var rng = PhiloxRandom(seed: 9)
        let w = Tensor(randomNormal: [2, 3, 8, 8], using: &rng)
        let policy = "flip,color,translation,cutout"
        let first = try GradientCheck.firstOrderError([Tensor(randomUniform: [2, 3, 8, 8], low: -1, high: 1, using: &rng)]) { xs in
            try (self.apply(policy, x: xs[0], seed: 4) * w).sum()
        }
        #expect(first < 2e-2)
        let second = try GradientCheck.secondOrderError([Tensor(randomUniform: [2, 3, 8, 8], low: -1, high: 1, using: &rng)]) { xs in
            try (self.apply(policy, x: xs[0], seed: 4).square() * w).sum()
        }
        #expect(second < 2e-2)
    }

    @Test func drawsAreReproduciblePerEvaluationAndPerInput() throws {
        let p = try augment(#", "policy": "color,translation,cutout,flip""#)
        let x = images()
        func run(_ index: Int, _ stage: any Stage) throws -> [String: [Float]] {
            let out = try stage.run(["real", "other"], index: index, inputs: ["real": .tensor(x), "other": .tensor(x)], stageID: "aug")
            return out.mapValues { $0.tensor!.scalars }
        }
        let a = try run(1, p.stage("aug")), b = try run(1, p.stage("aug")), c = try run(2, p.stage("aug"))
        #expect(a == b)
        #expect(a["real"] != c["real"])
        #expect(a["real"] != a["other"], "independent draws per input")
        let shared = try augment(#", "shareDraws": true"#)
        let s = try run(1, shared.stage("aug"))
        #expect(s["real"] == s["other"])
    }

    @Test func badPoliciesAndWiringAreClearErrors() {
        #expect(buildProblems(Self.data + #", "aug": { "type": "augment.diff", "inputs": { "real": "data.images" }, "policy": "colr,cutout" }"#, consume: "aug.real")
                == ["$.stages.aug.policy: unknown augmentation 'colr'; known: color, flip, brightness, saturation, contrast, translation, cutout (did you mean 'color'?)"])
        let pyramid = Self.data.replacingOccurrences(of: #""size": 16"#, with: #""size": 16, "pyramid": 8"#)
        #expect(buildProblems(pyramid + #", "aug": { "type": "augment.diff", "inputs": { "real": "data.pyramid" } }"#, consume: "aug.real")
                == ["$.stages.aug.inputs.real: expected images [N, C, H, W], found pyramid [8, 1, 8, 8] [8, 1, 16, 16]"])
    }
}
