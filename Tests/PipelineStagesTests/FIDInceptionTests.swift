import Foundation
import ImageIO
import NeuralNet
@testable import PipelineStages
import Testing
import TensorRuntime

/// The FID Inception's architecture against pytorch-fid's, on the reduced-width golden fixture
/// (Scripts/golden/make_fid_inception_golden.py: every channel count / 16, seeded weights, the
/// features and logits pytorch-fid's InceptionV3 wrapper computes for four photos).
@Suite struct FIDInceptionTests {
    struct Golden: Decodable {
        struct Case: Decodable { var image: String; var features: [Float]; var logits: [Float] }
        var divisor: Int
        var classes: Int
        var weights: String
        var cases: [Case]
    }

    static func golden() throws -> Golden {
        try JSONDecoder().decode(Golden.self, from: Data(contentsOf: URL(fileURLWithPath: fixture("golden/fid-inception-w16.json"))))
    }

    static func network() throws -> FIDInception {
        try FIDInception(weights: SafeTensorsArchive(contentsOf: fixture("golden/fid-inception-w16.safetensors")))
    }

    /// Max |a - b| over max |b|.
    static func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map { abs($0 - $1) }.max()! / b.map(abs).max()!
    }

    @Test func reducedWidthFeaturesAndLogitsMatchPytorchFID() throws {
        let golden = try Self.golden()
        let net = try Self.network()
        #expect(net.divisor == 16 && net.dimension == 128 && net.classes == 10)
        for c in golden.cases {
            let image = try PNG.read(repositoryRoot + "/" + c.image, channels: 3)
            let x = image.tensor(range: .symmetric)
            let (features, logits) = try net.featuresAndLogits(try x.reshaped([1] + x.shape))
            #expect(features.shape == [1, 128] && logits.shape == [1, 10])
            let fe = Self.relativeError(features.scalars, c.features), le = Self.relativeError(logits.scalars, c.logits)
            #expect(fe < 1e-4, "\(c.image): features off by \(fe) relative")
            #expect(le < 1e-4, "\(c.image): logits off by \(le) relative")
        }
    }

    @Test func aBatchGivesEachImageItsOwnFeatures() throws {
        let golden = try Self.golden()
        let net = try Self.network()
        // Two 64x64 patches in one batch, as a features stage passes them.
        let paths = golden.cases.map(\.image).filter { $0.contains("patches") }
        let batch = try Image.batch(paths.map { try PNG.read(repositoryRoot + "/" + $0, channels: 3) })
        let scaled = batch * 2 - 1
        let (features, _) = try net.featuresAndLogits(scaled)
        for (i, path) in paths.enumerated() {
            let expected = golden.cases.first { $0.image == path }!.features
            let row = Array(features.scalars[(i * 128)..<((i + 1) * 128)])
            #expect(Self.relativeError(row, expected) < 1e-4, "\(path)")
        }
    }

    @Test func missingAndMisshapenTensorsAreNamed() throws {
        let source = try SafeTensorsArchive(contentsOf: fixture("golden/fid-inception-w16.safetensors"))
        func without(_ name: String, replacing replacement: Tensor? = nil) throws -> SafeTensorsArchive {
            var archive = SafeTensorsArchive(source: "inception.safetensors")
            for entry in source.names where entry != name { archive.set(entry, try source.tensor(entry)) }
            if let replacement { archive.set(name, replacement) }
            return archive
        }
        #expect(throws: FIDInceptionWeightsError("inception.safetensors: no tensor 'Mixed_6c.branch7x7dbl_3.bn.running_var' (expected shape [10])")) {
            try FIDInception(weights: try without("Mixed_6c.branch7x7dbl_3.bn.running_var"))
        }
        #expect(throws: FIDInceptionWeightsError("inception.safetensors: tensor 'Mixed_7c.branch3x3_2b.conv.weight' has shape [24, 24, 1, 3], expected [24, 24, 3, 1]")) {
            try FIDInception(weights: try without("Mixed_7c.branch3x3_2b.conv.weight", replacing: Tensor(zeros: [24, 24, 1, 3])))
        }
        #expect(throws: FIDInceptionWeightsError("inception.safetensors: tensor 'Conv2d_1a_3x3.conv.weight' has shape [3, 3, 3, 3], expected [32, 3, 3, 3]")) {
            try FIDInception(weights: try without("Conv2d_1a_3x3.conv.weight", replacing: Tensor(zeros: [3, 3, 3, 3])))
        }
        #expect(throws: FIDInceptionWeightsError("inception.safetensors: no tensor 'Conv2d_1a_3x3.conv.weight' (the first convolution of the FID Inception, expected shape [32, 3, 3, 3]); convert pytorch-fid's pt_inception-2015-12-05-*.pth with Scripts/convert_fid_inception.py")) {
            try FIDInception(weights: SafeTensorsArchive(source: "inception.safetensors"))
        }
    }

    @Test func theArchitectureHasPytorchFIDsTensors() {
        // 94 BasicConv2d, as torchvision builds pytorch-fid's network: 21,751,136 convolution weights.
        let convolutions = FIDInception.convolutions()
        #expect(convolutions.count == 94)
        #expect(convolutions.reduce(0) { $0 + $1.output * $1.input * $1.kernel.height * $1.kernel.width } == 21_751_136)
    }
}
