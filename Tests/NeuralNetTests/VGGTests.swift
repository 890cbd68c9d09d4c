import Foundation
import Testing
import NeuralNet
import TensorRuntime

@Suite struct VGGTests {
    @Test func layerNamesFollowKerasAndTorchvision() throws {
        var rng = PhiloxRandom(seed: 1)
        let vgg19 = try VGGFeatures(architecture: .vgg19, width: 1, rng: &rng)
        let vgg16 = try VGGFeatures(architecture: .vgg16, width: 1, rng: &rng)
        // torchvision vgg19().features: conv 19 and 21 open block 4; vgg16: 17 and 19.
        #expect(vgg19.position(of: "features.21") == vgg19.position(of: "block4_conv2"))
        #expect(vgg19.position(of: "features.22") == vgg19.position(of: "block4_conv2"), "the ReLU after a conv names the same activation")
        #expect(vgg16.position(of: "features.19") == vgg16.position(of: "block4_conv2"))
        #expect(vgg19.position(of: "features.36") == vgg19.position(of: "block5_pool"))
        #expect(vgg16.position(of: "features.30") == vgg16.position(of: "block5_pool"))
        #expect(vgg19.position(of: "block4_conv5") == nil && vgg19.position(of: "features.37") == nil)
        #expect(vgg19.layerNames.count == 16 + 5 && vgg16.layerNames.count == 13 + 5)
        let block4 = vgg19.position(of: "block4_conv2")!
        #expect(try vgg19.outputShape(for: [2, 3, 64, 48], at: block4) == [2, 8, 8, 6])
    }

    /// A VGG16 of width 2 with random weights, written as a torchvision-named safetensors file.
    func writeWeights(_ edit: (inout SafeTensorsArchive) -> Void = { _ in }) throws -> (VGGFeatures, String) {
        var rng = PhiloxRandom(seed: 9)
        let reference = try VGGFeatures(architecture: .vgg16, width: 2, rng: &rng)
        var archive = SafeTensorsArchive()
        for (name, t) in reference.stateDict { archive.set(name, t) }
        archive.set("classifier.0.weight", Tensor(zeros: [3, 2]))
        edit(&archive)
        let path = NSTemporaryDirectory() + "ganflow-vgg-\(UUID().uuidString).safetensors"
        try archive.write(to: path)
        return (reference, path)
    }

    @Test func loadsTorchvisionNamedWeights() throws {
        let (reference, path) = try writeWeights()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let loaded = try VGGFeatures(architecture: .vgg16, width: 2, weights: SafeTensorsArchive(contentsOf: path))
        #expect(loaded.stateDict.map(\.0) == reference.stateDict.map(\.0))
        var rng = PhiloxRandom(seed: 4)
        let x = Tensor(randomUniform: [1, 3, 32, 32], using: &rng)
        let layers: Set<Int> = [loaded.position(of: "block1_conv1")!, loaded.position(of: "block5_conv3")!]
        let a = try reference.forward(x, positions: layers), b = try loaded.forward(x, positions: layers)
        for l in layers { #expect(a[l]!.scalars == b[l]!.scalars) }
    }

    @Test func aMissingTensorIsNamed() throws {
        let (_, path) = try writeWeights { $0.remove("features.21.bias") }
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: VGGWeightsError("\(path): no tensor 'features.21.bias' (block4_conv3 of vgg16, expected shape [16])")) {
            try VGGFeatures(architecture: .vgg16, width: 2, weights: SafeTensorsArchive(contentsOf: path))
        }
    }

    @Test func aWrongShapeIsNamed() throws {
        let (_, path) = try writeWeights { $0.set("features.0.weight", Tensor(zeros: [2, 1, 3, 3])) }
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: VGGWeightsError("\(path): tensor 'features.0.weight' (block1_conv1 of vgg16) has shape [2, 1, 3, 3], expected [2, 3, 3, 3]")) {
            try VGGFeatures(architecture: .vgg16, width: 2, weights: SafeTensorsArchive(contentsOf: path))
        }
    }

    @Test func normalisesWithImageNetStatistics() throws {
        // Weights that copy channel 0 through block1_conv1 (a centre tap), bias 0: the activation
        // is relu((x - 0.485) / 0.229).
        var rng = PhiloxRandom(seed: 2)
        let reference = try VGGFeatures(architecture: .vgg16, width: 1, rng: &rng)
        var archive = SafeTensorsArchive()
        for (name, t) in reference.stateDict { archive.set(name, t) }
        var w = [Float](repeating: 0, count: 27)
        w[4] = 1
        archive.set("features.0.weight", try Tensor(shape: [1, 3, 3, 3], scalars: w))
        archive.set("features.0.bias", Tensor(zeros: [1]))
        let path = NSTemporaryDirectory() + "ganflow-vgg-\(UUID().uuidString).safetensors"
        try archive.write(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let net = try VGGFeatures(architecture: .vgg16, width: 1, weights: SafeTensorsArchive(contentsOf: path))
        let x = try Tensor(shape: [1, 3, 1, 2], scalars: [0.9, 0.1, 0.5, 0.5, 0.5, 0.5])
        let y = try net.forward(x, positions: [0])[0]!.scalars
        #expect(abs(y[0] - (0.9 - 0.485) / 0.229) < 1e-5)
        #expect(y[1] == 0)
    }
}
