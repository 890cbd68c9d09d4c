import TensorRuntime

/// The Inception v3 of the Frechet Inception Distance, as pytorch-fid builds it: torchvision's
/// `Inception3` with `FIDInceptionA` (Mixed_5b-d), `FIDInceptionC` (Mixed_6b-e),
/// `FIDInceptionE_1` (Mixed_7b) and `FIDInceptionE_2` (Mixed_7c) in place of the stock blocks,
/// loaded from the 2015 TensorFlow weights that pytorch-fid ships as a `state_dict`.
///
/// What the FID blocks change against torchvision: their average-pooling branch divides by the
/// window's input pixels only (`count_include_pad=False`, as TensorFlow pools), and Mixed_7c's
/// pooling branch takes the maximum. Each `BasicConv2d` (a bias-free convolution, a batch norm
/// with eps 0.001, a ReLU) runs here as one convolution with the batch norm's running statistics
/// folded into its weight and bias, which in evaluation is the same affine map.
///
/// Input handling is pytorch-fid's: images are resized to 299x299 bilinearly (`align_corners=False`)
/// and taken in [-1, 1] (pytorch-fid scales its [0, 1] input by `2x - 1`; ours already are).
/// Outputs are the 2048-d average-pooled features (FID, KID, precision/recall) and the 1008 logits
/// of `fc` (the Inception Score).
///
/// A network `divisor` times narrower (every channel count but the RGB input divided by it,
/// 1, 2, 4, 8 or 16) has the same topology; the test suite checks the architecture on such a
/// network against features computed by pytorch-fid's own modules.
public final class FIDInception: @unchecked Sendable {
    /// A `BasicConv2d`: a convolution without bias, batch norm, ReLU.
    public struct Convolution: Sendable {
        public var name: String
        public var input: Int, output: Int
        public var kernel: Size2D, stride: Size2D, padding: Size2D
    }

    /// Batch-norm epsilon of torchvision's `BasicConv2d`.
    public static let batchNormEpsilon = 0.001
    /// Side of the images the network takes.
    public static let inputSize = 299
    /// Channel counts are divided by one of these (1: the real network).
    public static let divisors = [1, 2, 4, 8, 16]

    public let divisor: Int
    public let classes: Int
    /// Features per image (2048 / divisor).
    public var dimension: Int { 2048 / divisor }
    /// Folded weight and bias of each convolution, by name.
    let units: [String: (weight: Tensor, bias: Tensor, spec: Convolution)]
    let fcWeight: Tensor, fcBias: Tensor

    /// The convolutions of the network, in order, under their `state_dict` prefixes.
    public static func convolutions(divisor: Int = 1) -> [Convolution] {
        func c(_ n: Int) -> Int { n / divisor }
        var out: [Convolution] = []
        func add(_ name: String, _ input: Int, _ output: Int, _ kernel: Size2D, stride: Size2D = 1, padding: Size2D = 0) {
            out.append(Convolution(name: name, input: input, output: output, kernel: kernel, stride: stride, padding: padding))
        }
        add("Conv2d_1a_3x3", 3, c(32), 3, stride: 2)
        add("Conv2d_2a_3x3", c(32), c(32), 3)
        add("Conv2d_2b_3x3", c(32), c(64), 3, padding: 1)
        add("Conv2d_3b_1x1", c(64), c(80), 1)
        add("Conv2d_4a_3x3", c(80), c(192), 3)
        for (name, input, pool) in [("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)] {
            add("\(name).branch1x1", c(input), c(64), 1)
            add("\(name).branch5x5_1", c(input), c(48), 1)
            add("\(name).branch5x5_2", c(48), c(64), 5, padding: 2)
            add("\(name).branch3x3dbl_1", c(input), c(64), 1)
            add("\(name).branch3x3dbl_2", c(64), c(96), 3, padding: 1)
            add("\(name).branch3x3dbl_3", c(96), c(96), 3, padding: 1)
            add("\(name).branch_pool", c(input), c(pool), 1)
        }
        add("Mixed_6a.branch3x3", c(288), c(384), 3, stride: 2)
        add("Mixed_6a.branch3x3dbl_1", c(288), c(64), 1)
        add("Mixed_6a.branch3x3dbl_2", c(64), c(96), 3, padding: 1)
        add("Mixed_6a.branch3x3dbl_3", c(96), c(96), 3, stride: 2)
        let row = Size2D(1, 7), column = Size2D(7, 1), rowPad = Size2D(0, 3), columnPad = Size2D(3, 0)
        for (name, c7) in [("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)] {
            add("\(name).branch1x1", c(768), c(192), 1)
            add("\(name).branch7x7_1", c(768), c(c7), 1)
            add("\(name).branch7x7_2", c(c7), c(c7), row, padding: rowPad)
            add("\(name).branch7x7_3", c(c7), c(192), column, padding: columnPad)
            add("\(name).branch7x7dbl_1", c(768), c(c7), 1)
            add("\(name).branch7x7dbl_2", c(c7), c(c7), column, padding: columnPad)
            add("\(name).branch7x7dbl_3", c(c7), c(c7), row, padding: rowPad)
            add("\(name).branch7x7dbl_4", c(c7), c(c7), column, padding: columnPad)
            add("\(name).branch7x7dbl_5", c(c7), c(192), row, padding: rowPad)
            add("\(name).branch_pool", c(768), c(192), 1)
        }
        add("Mixed_7a.branch3x3_1", c(768), c(192), 1)
        add("Mixed_7a.branch3x3_2", c(192), c(320), 3, stride: 2)
        add("Mixed_7a.branch7x7x3_1", c(768), c(192), 1)
        add("Mixed_7a.branch7x7x3_2", c(192), c(192), row, padding: rowPad)
        add("Mixed_7a.branch7x7x3_3", c(192), c(192), column, padding: columnPad)
        add("Mixed_7a.branch7x7x3_4", c(192), c(192), 3, stride: 2)
        for (name, input) in [("Mixed_7b", 1280), ("Mixed_7c", 2048)] {
            add("\(name).branch1x1", c(input), c(320), 1)
            add("\(name).branch3x3_1", c(input), c(384), 1)
            add("\(name).branch3x3_2a", c(384), c(384), Size2D(1, 3), padding: Size2D(0, 1))
            add("\(name).branch3x3_2b", c(384), c(384), Size2D(3, 1), padding: Size2D(1, 0))
            add("\(name).branch3x3dbl_1", c(input), c(448), 1)
            add("\(name).branch3x3dbl_2", c(448), c(384), 3, padding: 1)
            add("\(name).branch3x3dbl_3a", c(384), c(384), Size2D(1, 3), padding: Size2D(0, 1))
            add("\(name).branch3x3dbl_3b", c(384), c(384), Size2D(3, 1), padding: Size2D(1, 0))
            add("\(name).branch_pool", c(input), c(192), 1)
        }
        return out
    }

    /// The network with the weights of `archive`, a pytorch-fid `state_dict` converted by
    /// `Scripts/convert_fid_inception.py` (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_var`,
    /// ..., `fc.weight`, `fc.bias`). The width and the number of classes are read from the
    /// shapes of `Conv2d_1a_3x3.conv.weight` and `fc.weight`.
    ///
    /// - Throws: `FIDInceptionWeightsError` naming the first missing or misshapen tensor.
    public init(weights archive: SafeTensorsArchive) throws {
        let source = archive.source
        func fail(_ message: String) -> FIDInceptionWeightsError { FIDInceptionWeightsError("\(source): \(message)") }
        guard let first = archive.entry("Conv2d_1a_3x3.conv.weight") else {
            throw fail("no tensor 'Conv2d_1a_3x3.conv.weight' (the first convolution of the FID Inception, expected shape [32, 3, 3, 3]); convert pytorch-fid's pt_inception-2015-12-05-*.pth with Scripts/convert_fid_inception.py")
        }
        guard first.shape.count == 4, first.shape[0] > 0, 32 % first.shape[0] == 0, Self.divisors.contains(32 / first.shape[0]) else {
            throw fail("tensor 'Conv2d_1a_3x3.conv.weight' has shape \(describe(first.shape)), expected [32, 3, 3, 3]")
        }
        let divisor = 32 / first.shape[0]
        var units: [String: (Tensor, Tensor, Convolution)] = [:]
        func load(_ name: String, _ expected: [Int]) throws -> [Float] {
            guard archive.entry(name) != nil else {
                throw fail("no tensor '\(name)' (expected shape \(describe(expected)))")
            }
            let t = try archive.tensor(name)
            guard t.shape == expected else {
                throw fail("tensor '\(name)' has shape \(describe(t.shape)), expected \(describe(expected))")
            }
            return t.scalars
        }
        for spec in Self.convolutions(divisor: divisor) {
            let o = spec.output
            let weight = try load("\(spec.name).conv.weight", [o, spec.input, spec.kernel.height, spec.kernel.width])
            let gamma = try load("\(spec.name).bn.weight", [o]), beta = try load("\(spec.name).bn.bias", [o])
            let mean = try load("\(spec.name).bn.running_mean", [o]), variance = try load("\(spec.name).bn.running_var", [o])
            // Batch norm in evaluation, gamma (y - mean) / sqrt(var + eps) + beta, folded into the convolution.
            var folded = weight, bias = [Float](repeating: 0, count: o)
            let perFilter = weight.count / o
            for f in 0..<o {
                let scale = Double(gamma[f]) / (Double(variance[f]) + Self.batchNormEpsilon).squareRoot()
                for i in (f * perFilter)..<((f + 1) * perFilter) { folded[i] = Float(Double(weight[i]) * scale) }
                bias[f] = Float(Double(beta[f]) - Double(mean[f]) * scale)
            }
            units[spec.name] = (try Tensor(shape: [o, spec.input, spec.kernel.height, spec.kernel.width], scalars: folded),
                                try Tensor(shape: [o], scalars: bias), spec)
        }
        guard let fc = archive.entry("fc.weight") else {
            throw fail("no tensor 'fc.weight' (the classifier of the Inception Score, expected shape [1008, \(2048 / divisor)])")
        }
        guard fc.shape.count == 2, fc.shape[0] >= 2 else {
            throw fail("tensor 'fc.weight' has shape \(describe(fc.shape)), expected [1008, \(2048 / divisor)]")
        }
        let classes = fc.shape[0]
        fcWeight = try Tensor(shape: [classes, 2048 / divisor], scalars: try load("fc.weight", [classes, 2048 / divisor]))
        fcBias = try Tensor(shape: [classes], scalars: try load("fc.bias", [classes]))
        // Read by every batch, never written: each keeps its copy in the convolution's layout.
        for (weight, bias, _) in units.values {
            weight.keepLayoutCopies()
            bias.keepLayoutCopies()
        }
        self.units = units.mapValues { (weight: $0.0, bias: $0.1, spec: $0.2) }
        self.divisor = divisor
        self.classes = classes
        layout = ActivationLayout.preferred
    }

    /// The layout the activations are kept in.
    public let layout: ActivationLayout

    /// `images` [N, C, H, W] in [-1, 1] as the network takes them: gray repeated to RGB, then
    /// resized bilinearly to 299x299 (pytorch-fid resizes even 299x299 input, which is the identity).
    public static func prepared(_ images: Tensor) throws -> Tensor {
        guard images.rank == 4, images.shape[1] == 1 || images.shape[1] == 3 else {
            throw TensorError("FID Inception: expected gray or RGB images [N, 1 or 3, H, W], found \(describe(images.shape))")
        }
        var x = images
        if x.shape[1] == 1 { x = try Tensor.concat([x, x, x], axis: 1) }
        if x.shape[2] != inputSize || x.shape[3] != inputSize {
            x = try x.upsampleBilinear(height: inputSize, width: inputSize)
        }
        return x
    }

    /// The 2048-d (2048 / divisor) pooled features [N, dimension] and the logits [N, classes]
    /// of `images` [N, C, H, W] in [-1, 1], without gradients.
    ///
    /// When the convolution kernels compute channels last on this CPU (`ActivationLayout.preferred`),
    /// the activations stay channels last from the first convolution's result to the pooled
    /// features, so that no convolution converts its input or its result.
    public func featuresAndLogits(_ images: Tensor) throws -> (features: Tensor, logits: Tensor) {
        try withoutGradients {
            var x = try Self.prepared(images)
            for name in ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"] { x = try unit(name, x) }
            x = try x.maxPool2d(kernel: 3, stride: 2, layout: layout)
            for name in ["Conv2d_3b_1x1", "Conv2d_4a_3x3"] { x = try unit(name, x) }
            x = try x.maxPool2d(kernel: 3, stride: 2, layout: layout)
            // Each block's input is read by several branches and never written: the first
            // convolution's copy of it in the kernel layout serves the others.
            for block in ["Mixed_5b", "Mixed_5c", "Mixed_5d"] { x.keepLayoutCopies(); x = try inceptionA(block, x) }
            x.keepLayoutCopies()
            x = try inceptionB("Mixed_6a", x)
            for block in ["Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"] { x.keepLayoutCopies(); x = try inceptionC(block, x) }
            x.keepLayoutCopies()
            x = try inceptionD("Mixed_7a", x)
            x.keepLayoutCopies()
            x = try inceptionE("Mixed_7b", x, maxPool: false)
            x.keepLayoutCopies()
            x = try inceptionE("Mixed_7c", x, maxPool: true)
            let features = try x.mean(axes: layout == .channelsLast ? [1, 2] : [2, 3])
            let logits = try matmul(features, fcWeight, transposeB: true) + fcBias
            return (features, logits)
        }
    }

    /// One folded `BasicConv2d`: convolution with bias, ReLU, in one pass; its result in
    /// `layout` (the first one reads the images in [N, C, H, W]).
    private func unit(_ name: String, _ x: Tensor) throws -> Tensor {
        let u = units[name]!
        return try conv2dReLU(x, weight: u.weight, bias: u.bias, stride: u.spec.stride, padding: u.spec.padding,
                              layout: name == "Conv2d_1a_3x3" ? .channelsFirst : layout, resultLayout: layout)
    }

    /// Channels of an activation in `layout`.
    private var channelAxis: Int { layout == .channelsLast ? 3 : 1 }

    private func units(_ block: String, _ names: [String], _ x: Tensor) throws -> Tensor {
        var y = x
        for name in names { y = try unit("\(block).\(name)", y) }
        return y
    }

    /// TensorFlow's average pooling: 3x3, stride 1, padding 1, padding not counted.
    private func averagePooled(_ x: Tensor) throws -> Tensor {
        try x.avgPool2d(kernel: 3, stride: 1, padding: 1, countIncludePad: false, layout: layout)
    }

    /// `FIDInceptionA`.
    private func inceptionA(_ block: String, _ x: Tensor) throws -> Tensor {
        try Tensor.concat([
            try unit("\(block).branch1x1", x),
            try units(block, ["branch5x5_1", "branch5x5_2"], x),
            try units(block, ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"], x),
            try unit("\(block).branch_pool", try averagePooled(x)),
        ], axis: channelAxis)
    }

    /// torchvision's `InceptionB` (Mixed_6a), unchanged in the FID network.
    private func inceptionB(_ block: String, _ x: Tensor) throws -> Tensor {
        try Tensor.concat([
            try unit("\(block).branch3x3", x),
            try units(block, ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"], x),
            try x.maxPool2d(kernel: 3, stride: 2, layout: layout),
        ], axis: channelAxis)
    }

    /// `FIDInceptionC`.
    private func inceptionC(_ block: String, _ x: Tensor) throws -> Tensor {
        try Tensor.concat([
            try unit("\(block).branch1x1", x),
            try units(block, ["branch7x7_1", "branch7x7_2", "branch7x7_3"], x),
            try units(block, ["branch7x7dbl_1", "branch7x7dbl_2", "branch7x7dbl_3", "branch7x7dbl_4", "branch7x7dbl_5"], x),
            try unit("\(block).branch_pool", try averagePooled(x)),
        ], axis: channelAxis)
    }

    /// torchvision's `InceptionD` (Mixed_7a), unchanged in the FID network.
    private func inceptionD(_ block: String, _ x: Tensor) throws -> Tensor {
        try Tensor.concat([
            try units(block, ["branch3x3_1", "branch3x3_2"], x),
            try units(block, ["branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3", "branch7x7x3_4"], x),
            try x.maxPool2d(kernel: 3, stride: 2, layout: layout),
        ], axis: channelAxis)
    }

    /// `FIDInceptionE_1` (average pooling without padding) or `FIDInceptionE_2` (`maxPool`: 3x3
    /// maximum, stride 1, padding 1).
    private func inceptionE(_ block: String, _ x: Tensor, maxPool: Bool) throws -> Tensor {
        let b3 = try unit("\(block).branch3x3_1", x)
        let d3 = try units(block, ["branch3x3dbl_1", "branch3x3dbl_2"], x)
        let pooled = maxPool ? try x.maxPool2d(kernel: 3, stride: 1, padding: 1, layout: layout) : try averagePooled(x)
        return try Tensor.concat([
            try unit("\(block).branch1x1", x),
            try unit("\(block).branch3x3_2a", b3), try unit("\(block).branch3x3_2b", b3),
            try unit("\(block).branch3x3dbl_3a", d3), try unit("\(block).branch3x3dbl_3b", d3),
            try unit("\(block).branch_pool", pooled),
        ], axis: channelAxis)
    }
}

/// An FID Inception weight file that lacks a tensor or holds one of the wrong shape.
public struct FIDInceptionWeightsError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
