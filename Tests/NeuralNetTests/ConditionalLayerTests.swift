import Foundation
import NeuralNet
import Testing
import TensorRuntime

/// PyTorch's values for the conditional layers: `Fixtures/golden/conditional.json`, written by
/// `Scripts/golden/conditional.py`.
struct ConditionalGolden: Decodable {
    struct Stored: Decodable {
        var shape: [Int]
        var values: [Float]
    }

    struct Case: Decodable {
        var params: [String: Double]
        var tensors: [String: Stored]

        func tensor(_ name: String) throws -> Tensor {
            guard let s = tensors[name] else { throw TensorError("golden fixture: no tensor '\(name)'") }
            return try Tensor(shape: s.shape, scalars: s.values)
        }
    }

    var cases: [String: Case]

    static func named(_ name: String, filePath: String = #filePath) throws -> Case {
        let url = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/golden/conditional.json")
        let all = try JSONDecoder().decode(ConditionalGolden.self, from: Data(contentsOf: url))
        guard let c = all.cases[name] else { throw TensorError("golden fixture: no case '\(name)'") }
        return c
    }

    /// The largest |a - b| / max(1, |b|), or infinity when the shapes differ.
    static func difference(_ a: Tensor, _ b: Tensor) -> Float {
        guard a.shape == b.shape else { return .infinity }
        return zip(a.scalars, b.scalars).reduce(0) { max($0, abs($1.0 - $1.1) / max(1, abs($1.1))) }
    }
}

@Suite struct ConditionalLayerTests {
    @Test(arguments: ["cbn4d", "cbn2d"])
    func conditionalBatchNormMatchesPyTorch(caseName: String) throws {
        let golden = try ConditionalGolden.named(caseName)
        let x = try golden.tensor("x").requiringGradients(), labels = try golden.tensor("labels")
        let upstream = try golden.tensor("upstream")
        let layer = ConditionalBatchNorm(x.shape[1], classes: Int(golden.params["classes"]!), momentum: Float(golden.params["momentum"]!))
        try layer.gain.assign(try golden.tensor("gain"))
        try layer.bias.assign(try golden.tensor("bias"))
        try layer.statistics.runningMean.assign(try golden.tensor("runningMean"))
        try layer.statistics.runningVar.assign(try golden.tensor("runningVar"))

        let y = try ClassLabels.with(labels) { try layer.forward(x, mode: .train) }
        #expect(ConditionalGolden.difference(y, try golden.tensor("trainOutput")) < 1e-5)
        #expect(ConditionalGolden.difference(layer.statistics.runningMean, try golden.tensor("updatedRunningMean")) < 1e-6)
        #expect(ConditionalGolden.difference(layer.statistics.runningVar, try golden.tensor("updatedRunningVar")) < 1e-6)
        #expect(layer.namedCounters.first?.1 == 1)
        var g = try gradients(of: y, wrt: [x, layer.gain, layer.bias], seed: upstream)
        #expect(ConditionalGolden.difference(g[0], try golden.tensor("trainDx")) < 1e-5)
        #expect(ConditionalGolden.difference(g[1], try golden.tensor("trainDgain")) < 1e-5)
        #expect(ConditionalGolden.difference(g[2], try golden.tensor("trainDbias")) < 1e-5)

        let e = try ClassLabels.with(labels) { try layer.forward(x, mode: .eval) }
        #expect(ConditionalGolden.difference(e, try golden.tensor("evalOutput")) < 1e-5)
        g = try gradients(of: e, wrt: [x, layer.gain, layer.bias], seed: upstream)
        #expect(ConditionalGolden.difference(g[0], try golden.tensor("evalDx")) < 1e-5)
        #expect(ConditionalGolden.difference(g[1], try golden.tensor("evalDgain")) < 1e-5)
        #expect(ConditionalGolden.difference(g[2], try golden.tensor("evalDbias")) < 1e-5)
    }

    @Test(arguments: ["projection4d", "projection2d", "auxiliary4d", "auxiliary2d", "projectionAuxiliary4d"])
    func classHeadMatchesPyTorch(caseName: String) throws {
        let golden = try ConditionalGolden.named(caseName)
        let h = try golden.tensor("h").requiringGradients(), labels = try golden.tensor("labels")
        let classes = Int(golden.params["classes"]!), c = h.shape[1]
        var rng = PhiloxRandom(seed: 1)
        let psi: any Layer = h.rank == 4 ? try Conv2D(c, 1, kernel: h.shape[2], rng: &rng) : try Linear(c, 1, rng: &rng)
        let kind: ClassHead.Kind = caseName.hasPrefix("projectionAuxiliary") ? .projectionAuxiliary
            : caseName.hasPrefix("projection") ? .projection : .auxiliary
        let head = try ClassHead(kind, psi: psi, features: c, classes: classes, rng: &rng)
        let names = head.namedParameters.map(\.0)
        let expected: [ClassHead.Kind: [String]] = [
            .projection: ["psi.weight", "psi.bias", "embed.weight"],
            .auxiliary: ["psi.weight", "psi.bias", "classifier.weight", "classifier.bias"],
            .projectionAuxiliary: ["psi.weight", "psi.bias", "embed.weight", "classifier.weight", "classifier.bias"],
        ]
        #expect(names == expected[kind])
        #expect(try head.outputShape(for: h.shape) == (kind == .projection ? [h.shape[0]] : [h.shape[0], 1 + classes]))
        for (name, p) in head.namedParameters { try p.assign(try golden.tensor(name)) }

        let y = try ClassLabels.with(labels) { try head.forward(h, mode: .train) }
        #expect(y.shape == (try head.outputShape(for: h.shape)))
        #expect(ConditionalGolden.difference(y, try golden.tensor("output")) < 1e-5)
        let g = try gradients(of: y, wrt: [h] + head.namedParameters.map(\.1), seed: try golden.tensor("upstream"))
        #expect(ConditionalGolden.difference(g[0], try golden.tensor("dh")) < 1e-5)
        for (i, name) in names.enumerated() {
            #expect(ConditionalGolden.difference(g[i + 1], try golden.tensor("d" + name)) < 1e-5, "gradient of \(name)")
        }
    }

    @Test func labelsAreChecked() throws {
        let layer = ConditionalBatchNorm(3, classes: 4)
        let x = Tensor(zeros: [2, 3])
        #expect(throws: TensorError("ConditionalBatchNorm(3, 4 classes) is conditioned on classes but was given no class labels")) {
            try layer.forward(x, mode: .train)
        }
        #expect(throws: TensorError("class label 4.0 is not one of 0...3 (4 classes)")) {
            try ClassLabels.with(try Tensor(shape: [2], scalars: [0, 4])) { try layer.forward(x, mode: .train) }
        }
        #expect(throws: TensorError("ConditionalBatchNorm(3, 4 classes): expected 2 class labels for a batch of 2, found labels of shape [3]")) {
            try ClassLabels.with(try Tensor(shape: [3], scalars: [0, 1, 2])) { try layer.forward(x, mode: .train) }
        }
    }

    /// The conditional DCGAN-32 stacks: shapes, names beside the unconditional ones, and the
    /// class changing the output.
    @Test func conditionalDCGANShapes() throws {
        var rng = PhiloxRandom(seed: 3)
        let cbn = try DCGAN.generator(latent: 8, channels: 1, resolution: 16, width: 4, conditioning: ClassConditioning(.cbn, classes: 3), rng: &rng)
        let concat = try DCGAN.generator(latent: 8, channels: 1, resolution: 16, width: 4, conditioning: ClassConditioning(.concat, classes: 3), rng: &rng)
        let plain = try DCGAN.generator(latent: 8, channels: 1, resolution: 16, width: 4, rng: &rng)
        #expect(try cbn.outputShape(for: [2, 8, 1, 1]) == [2, 1, 16, 16])
        #expect(try concat.outputShape(for: [2, 8, 1, 1]) == [2, 1, 16, 16])
        #expect(cbn.namedParameters.map(\.0).contains("1.gain.weight"))
        #expect(cbn.namedBuffers.map(\.0).contains("1.bn.running_mean"))
        #expect(concat.namedParameters.first?.0 == "0.embed.weight")
        #expect(concat.namedParameters.first { $0.0 == "1.weight" }?.1.shape == [11, 8, 4, 4])
        // A batch norm's weight and bias become a gain and a bias per class.
        #expect(plain.namedParameters.count == cbn.namedParameters.count)
        // cBN starts class-independent (gain 1, bias 0); give class 0 its own gain.
        let gain = cbn.namedParameters.first { $0.0 == "1.gain.weight" }!.1
        for j in 0..<gain.shape[1] { gain.data[j] = 2 }

        let z = Tensor(randomNormal: [4, 8, 1, 1], using: &rng)
        for g in [cbn, concat] {
            let a = try ClassLabels.with(try Tensor(shape: [4], scalars: [0, 1, 2, 0])) { try g.forward(z, mode: .sample) }
            let b = try ClassLabels.with(try Tensor(shape: [4], scalars: [1, 1, 2, 0])) { try g.forward(z, mode: .sample) }
            #expect(a.shape == [4, 1, 16, 16])
            #expect(ConditionalGolden.difference(a, b) > 0)
        }

        for method in ClassConditioning.discriminatorMethods {
            let d = try DCGAN.discriminator(channels: 1, resolution: 16, width: 4, conditioning: ClassConditioning(method, classes: 3), rng: &rng)
            let expected = method.hasAuxiliaryClassifier ? [2, 4] : [2]
            #expect(try d.outputShape(for: [2, 1, 16, 16]) == expected)
            let y = try ClassLabels.with(try Tensor(shape: [2], scalars: [2, 0])) { try d.forward(Tensor(zeros: [2, 1, 16, 16]), mode: .train) }
            #expect(y.shape == expected)
        }
        #expect(throws: TensorError("conditioning 'cbn' is for generators; a discriminator takes concat, projection, ac, projection+ac")) {
            var r = PhiloxRandom(seed: 1)
            _ = try DCGAN.discriminator(channels: 1, resolution: 16, width: 4, conditioning: ClassConditioning(.cbn, classes: 3), rng: &r)
        }
    }

    @Test func conditionalMLPShapes() throws {
        var rng = PhiloxRandom(seed: 4)
        for method in ClassConditioning.generatorMethods {
            let g = try MLPGAN.generator(latent: 6, hidden: [8, 8], size: 4, conditioning: ClassConditioning(method, classes: 3), rng: &rng)
            let y = try ClassLabels.with(try Tensor(shape: [3], scalars: [0, 1, 2])) { try g.forward(Tensor(zeros: [3, 6]), mode: .train) }
            #expect(y.shape == [3, 1, 4, 4])
        }
        for method in ClassConditioning.discriminatorMethods {
            let d = try MLPGAN.discriminator(hidden: [8], size: 4, conditioning: ClassConditioning(method, classes: 3), rng: &rng)
            let y = try ClassLabels.with(try Tensor(shape: [3], scalars: [0, 1, 2])) { try d.forward(Tensor(zeros: [3, 1, 4, 4]), mode: .train) }
            #expect(y.shape == (method.hasAuxiliaryClassifier ? [3, 4] : [3]))
        }
    }
}
