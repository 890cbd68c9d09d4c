import TensorRuntime

/// The convolutional part of VGG16 or VGG19 (torchvision's `vgg16().features`, `vgg19().features`),
/// run up to the deepest requested layer, returning the activations of named layers.
///
/// Layers are named as Keras names them (`block4_conv2`, `block3_pool`) or by torchvision's module
/// index (`features.21`). A convolution's index and the index of the ReLU after it name the same
/// activation, after the ReLU: that is what Keras's `block4_conv2` returns, and what a hook on
/// torchvision's `features.21` sees once the in-place ReLU has run.
///
/// Inputs are images in [0, 1]; the network normalises them with ImageNet's mean and standard
/// deviation, as torchvision's pretrained weights expect. Weights are fixed (not trainable).
public final class VGGFeatures: @unchecked Sendable {
    public enum Architecture: String, Sendable, CaseIterable {
        case vgg16, vgg19

        /// Convolutions per block.
        var convolutions: [Int] { self == .vgg16 ? [2, 2, 3, 3, 3] : [2, 2, 4, 4, 4] }
    }

    public enum Pooling: String, Sendable, CaseIterable {
        case max, average
    }

    /// One module of `features` that has a name: a convolution (with its ReLU) or a pooling.
    public struct Module: Sendable, Equatable {
        /// `block4_conv2` or `block4_pool`.
        public var name: String
        /// torchvision's index in `features` (of the convolution, not its ReLU).
        public var index: Int
        /// Input and output channels of a convolution; nil for a pooling.
        public var channels: (input: Int, output: Int)?

        public static func == (a: Module, b: Module) -> Bool {
            a.name == b.name && a.index == b.index && a.channels?.input == b.channels?.input && a.channels?.output == b.channels?.output
        }
    }

    public static let imageNetMean: [Float] = [0.485, 0.456, 0.406]
    public static let imageNetStd: [Float] = [0.229, 0.224, 0.225]

    public let architecture: Architecture
    public let pooling: Pooling
    public let modules: [Module]
    /// Weight and bias of each convolution, by module position (nil for poolings).
    var weights: [(weight: Tensor, bias: Tensor)?]
    let mean: Tensor, std: Tensor

    /// The modules of an architecture whose first block has `width` channels (64 in VGG), doubling
    /// per block up to 8 x `width`.
    public static func modules(_ architecture: Architecture, width: Int = 64) -> [Module] {
        var out: [Module] = []
        var index = 0, channels = 3
        for (b, n) in architecture.convolutions.enumerated() {
            let width = width << min(b, 3)
            for c in 0..<n {
                out.append(Module(name: "block\(b + 1)_conv\(c + 1)", index: index, channels: (channels, width)))
                channels = width
                index += 2
            }
            out.append(Module(name: "block\(b + 1)_pool", index: index, channels: nil))
            index += 1
        }
        return out
    }

    private init(architecture: Architecture, pooling: Pooling, modules: [Module], weights: [(weight: Tensor, bias: Tensor)?]) throws {
        self.architecture = architecture
        self.pooling = pooling
        self.modules = modules
        self.weights = weights
        mean = try Tensor(shape: [1, 3, 1, 1], scalars: Self.imageNetMean)
        std = try Tensor(shape: [1, 3, 1, 1], scalars: Self.imageNetStd)
    }

    /// A network with random weights: Kaiming-normal convolutions (fan in, ReLU gain) and zero
    /// biases, from `rng`.
    public convenience init(architecture: Architecture, pooling: Pooling = .max, width: Int = 64, rng: inout PhiloxRandom) throws {
        guard width >= 1 else { throw TensorError("VGG: width \(width) must be at least 1") }
        let modules = Self.modules(architecture, width: width)
        var weights: [(weight: Tensor, bias: Tensor)?] = []
        for m in modules {
            guard let c = m.channels else { weights.append(nil); continue }
            let w = try Initializers.kaimingNormal([c.output, c.input, 3, 3], using: &rng)
            weights.append((w, Tensor(zeros: [c.output])))
        }
        try self.init(architecture: architecture, pooling: pooling, modules: modules, weights: weights)
    }

    /// A network with the weights of `archive`, a torchvision `state_dict` (`features.0.weight`,
    /// `features.0.bias`, ...; other entries such as `classifier.*` are ignored).
    ///
    /// - Throws: `VGGWeightsError` naming the first missing tensor or the first wrong shape.
    /// `width` is 64 for torchvision's networks; a narrower network (in tests) has every channel count scaled by width / 64.
    public convenience init(architecture: Architecture, pooling: Pooling = .max, width: Int = 64,
                            weights archive: SafeTensorsArchive) throws {
        let modules = Self.modules(architecture, width: width)
        var weights: [(weight: Tensor, bias: Tensor)?] = []
        for m in modules {
            guard let c = m.channels else { weights.append(nil); continue }
            let expected = [[c.output, c.input, 3, 3], [c.output]]
            var loaded: [Tensor] = []
            for (k, suffix) in ["weight", "bias"].enumerated() {
                let name = "features.\(m.index).\(suffix)"
                guard archive.entry(name) != nil else {
                    throw VGGWeightsError("\(archive.source): no tensor '\(name)' (\(m.name) of \(architecture.rawValue), expected shape \(describe(expected[k])))")
                }
                let t = try archive.tensor(name)
                guard t.shape == expected[k] else {
                    throw VGGWeightsError("\(archive.source): tensor '\(name)' (\(m.name) of \(architecture.rawValue)) has shape \(describe(t.shape)), expected \(describe(expected[k]))")
                }
                loaded.append(t.copy())
            }
            weights.append((loaded[0], loaded[1]))
        }
        try self.init(architecture: architecture, pooling: pooling, modules: modules, weights: weights)
    }

    /// The weights under torchvision's `state_dict` names (`features.0.weight`, `features.0.bias`, ...).
    public var stateDict: [(String, Tensor)] {
        zip(modules, weights).flatMap { m, w in
            w.map { [("features.\(m.index).weight", $0.weight), ("features.\(m.index).bias", $0.bias)] } ?? []
        }
    }

    /// Names accepted for layers, in network order: `blockK_convJ` and `blockK_pool`.
    public var layerNames: [String] { modules.map(\.name) }

    /// The position in `modules` of a layer named `blockK_convJ`, `blockK_pool` or `features.N`.
    public func position(of name: String) -> Int? {
        if let i = modules.firstIndex(where: { $0.name == name }) { return i }
        guard name.hasPrefix("features."), let n = Int(name.dropFirst("features.".count)) else { return nil }
        return modules.firstIndex { $0.index == n || ($0.channels != nil && $0.index + 1 == n) }
    }

    /// The shape of layer `position`'s activation for an input of shape `input`.
    public func outputShape(for input: [Int], at position: Int) throws -> [Int] {
        guard input.count == 4, input[1] == 3 else {
            throw TensorError("VGG: expected RGB images [N, 3, H, W], found \(describe(input))")
        }
        var h = input[2], w = input[3], c = 3
        for m in modules[...position] {
            if let ch = m.channels {
                c = ch.output
            } else {
                guard h >= 2, w >= 2 else {
                    throw TensorError("VGG: images of \(input[2])x\(input[3]) are too small for \(modules[position].name) (\(m.name) halves \(h)x\(w))")
                }
                h /= 2
                w /= 2
            }
        }
        return [input[0], c, h, w]
    }

    /// The activations at `positions` (indices into `modules`) for images `x` [N, 3, H, W] in [0, 1],
    /// running the network only as deep as the deepest of them.
    public func forward(_ x: Tensor, positions: Set<Int>) throws -> [Int: Tensor] {
        guard let last = positions.max() else { return [:] }
        var h = try (x - mean) / std
        var out: [Int: Tensor] = [:]
        for i in 0...last {
            if let (w, b) = weights[i] {
                h = try conv2d(h, weight: w, bias: b, padding: 1).relu()
            } else {
                h = pooling == .max ? try h.maxPool2d(kernel: 2) : try h.avgPool2d(kernel: 2)
            }
            if positions.contains(i) { out[i] = h }
        }
        return out
    }
}

/// A VGG weight file that lacks a tensor or holds one of the wrong shape.
public struct VGGWeightsError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
