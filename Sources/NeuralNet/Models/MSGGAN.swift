import TensorRuntime

extension ProGANGenerator {
    /// MSG-GAN's output (Karnewar and Wang, CVPR 2020): every block's image through its toRGB,
    /// 4x4 first and the target last. The same weights as the progressive generator.
    public func pyramid(_ z: Tensor, mode: ForwardMode = .train) throws -> [Tensor] {
        var h = z
        var images: [Tensor] = []
        for (block, rgb) in zip(blocks, toRGB) {
            h = try block.forward(h, mode: mode)
            images.append(try rgb.forward(h, mode: mode))
        }
        return images
    }

    /// Shapes of `pyramid` for latents of shape `input`.
    public func pyramidShapes(for input: [Int]) throws -> [[Int]] {
        try architecture.resolutions.map { try outputShape(for: input, resolution: $0) }
    }
}

/// How MSG-GAN's discriminator joins the image of a scale to its main path (the paper's phi).
public enum MSGCombine: String, Sendable, CaseIterable {
    /// phi_simple: concatenate the image's channels to the features.
    case simple
    /// phi_lin_cat: a 1x1 convolution of the image to as many maps as the features, then concatenate.
    case linCat = "lin_cat"
    /// phi_cat_lin: concatenate, then a 1x1 convolution back to the features' maps.
    case catLin = "cat_lin"
}

/// One combine step: the image `[N, C, s, s]` and the features `[N, F, s, s]` to the block's input.
public final class MSGCombineLayer {
    public let kind: MSGCombine
    /// The 1x1 convolution of lin_cat (on the image) or cat_lin (on the concatenation).
    public let conv: EqualizedConv2D?
    public let outputChannels: Int

    public init(_ kind: MSGCombine, imageChannels: Int, features: Int, rng: inout PhiloxRandom) {
        self.kind = kind
        switch kind {
        case .simple:
            conv = nil
            outputChannels = features + imageChannels
        case .linCat:
            conv = EqualizedConv2D(imageChannels, features, kernel: 1, gain: 1, rng: &rng)
            outputChannels = 2 * features
        case .catLin:
            conv = EqualizedConv2D(features + imageChannels, features, kernel: 1, gain: 1, rng: &rng)
            outputChannels = features
        }
    }

    public func callAsFunction(image: Tensor, features: Tensor) throws -> Tensor {
        switch kind {
        case .simple: return try Tensor.concat([image, features], axis: 1)
        case .linCat: return try Tensor.concat([try conv!.forward(image, mode: .train), features], axis: 1)
        case .catLin: return try conv!.forward(try Tensor.concat([image, features], axis: 1), mode: .train)
        }
    }

    public var namedParameters: [(String, Tensor)] { conv?.namedParameters ?? [] }
}

/// MSG-GAN's discriminator: ProGAN's discriminator whose every block also takes the image of its
/// scale, joined to the main path by `combine`.
///
/// The finest scale enters through fromRGB (1x1 convolution, LeakyReLU 0.2) as in ProGAN; block
/// k (k > 0) takes combine(x[k], h) for each coarser scale, 3x3 convolution, LeakyReLU, 3x3
/// convolution, LeakyReLU, 2x2 average pooling; the final block combines the 4x4 image, then
/// minibatch stddev, 3x3 convolution, dense, dense to one score per image, `[N]`. Equalized
/// learning rate throughout. State names: `fromRGB.0.weight|bias`, `combine.<k>.weight|bias`
/// (lin_cat, cat_lin), `blocks.<k>.<i>.weight|bias`.
public final class MSGDiscriminator: Layer {
    public let architecture: ProGANArchitecture
    public let fromRGB: Sequential
    public let combines: [MSGCombineLayer]
    public let blocks: [Sequential]

    public init(architecture a: ProGANArchitecture, combine: MSGCombine = .simple, groupSize: Int = 4, rng: inout PhiloxRandom) {
        architecture = a
        let slope = Activation(.leakyRelu(0.2))
        let top = a.levels - 1
        fromRGB = Sequential([EqualizedConv2D(a.channels, a.features(stage: top + 1), kernel: 1, rng: &rng), slope])
        var combines: [MSGCombineLayer] = []
        var blocks: [Sequential] = []
        for k in 0..<a.levels {
            let n = a.features(stage: k + 1)
            var input = n
            if k < top {
                let c = MSGCombineLayer(combine, imageChannels: a.channels, features: n, rng: &rng)
                combines.append(c)
                input = c.outputChannels
            }
            if k == 0 {
                let d = a.features(stage: 0)
                var layers: [any Layer] = groupSize > 1 ? [MinibatchStddev(groupSize: groupSize)] : []
                layers += [EqualizedConv2D(input + (groupSize > 1 ? 1 : 0), n, kernel: 3, rng: &rng), slope, Reshape([n * 16]),
                           EqualizedLinear(n * 16, d, rng: &rng), slope, EqualizedLinear(d, 1, gain: 1, rng: &rng), Reshape([])]
                blocks.append(Sequential(layers))
            } else {
                let m = a.features(stage: k)
                blocks.append(Sequential([EqualizedConv2D(input, n, kernel: 3, rng: &rng), slope,
                                          EqualizedConv2D(n, m, kernel: 3, rng: &rng), slope, Downsample2x()]))
            }
        }
        self.combines = combines
        self.blocks = blocks
    }

    /// Scores `[N]` for a pyramid of images, 4x4 first.
    public func forward(pyramid x: [Tensor], mode: ForwardMode = .train) throws -> Tensor {
        _ = try checkedShapes(x.map(\.shape))
        let top = architecture.levels - 1
        var h = try blocks[top].forward(try fromRGB.forward(x[top], mode: mode), mode: mode)
        for k in stride(from: top - 1, through: 0, by: -1) {
            h = try blocks[k].forward(try combines[k](image: x[k], features: h), mode: mode)
        }
        return h
    }

    /// The pyramid of one image batch by average pooling, then `forward(pyramid:)`.
    public func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor {
        var levels = [x]
        while levels.count < architecture.levels { levels.insert(try levels[0].downsampleArea(factor: 2), at: 0) }
        return try forward(pyramid: levels, mode: mode)
    }

    /// The pyramid's shapes must be the architecture's scales, each `[N, C, s, s]`; throws naming
    /// the first scale that is not.
    public func checkedShapes(_ shapes: [[Int]]) throws -> [Int] {
        let sides = architecture.resolutions
        guard shapes.count == sides.count else {
            throw TensorError("MSG discriminator: expected \(sides.count) scales (\(sides.map(String.init).joined(separator: ", "))), got \(shapes.count)")
        }
        let n = shapes[0].first ?? 0
        for (i, (s, side)) in zip(shapes, sides).enumerated() where s != [n, architecture.channels, side, side] {
            throw TensorError("MSG discriminator: scale \(i) is \(describe(s)), expected \(describe([n, architecture.channels, side, side]))")
        }
        return try blocks[0].outputShape(for: [n, combines.first?.outputChannels ?? architecture.features(stage: 1), 4, 4])
    }

    public var namedParameters: [(String, Tensor)] {
        fromRGB.namedParameters.map { ("fromRGB.\($0.0)", $0.1) }
            + combines.enumerated().flatMap { k, c in c.namedParameters.map { ("combine.\(k).\($0.0)", $0.1) } }
            + blocks.enumerated().flatMap { k, b in b.namedParameters.map { ("blocks.\(k).\($0.0)", $0.1) } }
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 4, input[2] == architecture.target else {
            throw TensorError("MSG discriminator: expected images [N, \(architecture.channels), \(architecture.target), \(architecture.target)], got \(describe(input))")
        }
        return try checkedShapes(architecture.resolutions.map { [input[0], input[1], $0, $0] })
    }
}
