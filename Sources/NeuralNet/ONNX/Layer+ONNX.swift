import TensorRuntime

// Each layer's ONNX nodes compute what its `.sample` forward computes. Weights scaled at run time
// (equalized learning rate, spectral norm) are written scaled, as the forward pass uses them.

extension Sequential: ONNXExportable {
    public func emitONNX(_ graph: ONNXGraph, input: String, shape: [Int]) throws -> String {
        var x = input, s = shape
        for layer in layers {
            x = try graph.emit(layer, input: x, shape: s)
            s = try layer.outputShape(for: s)
        }
        return x
    }
}

extension Linear: ONNXExportable {
    public func emitONNX(_ graph: ONNXGraph, input: String, shape: [Int]) throws -> String {
        try emit(graph, input: input, weight: weight)
    }

    func emit(_ graph: ONNXGraph, input: String, weight: Tensor) throws -> String {
        let w = graph.constant(weight, name: "linear_weight")
        let inputs = [input, w] + (bias.map { [graph.constant($0, name: "linear_bias")] } ?? [])
        return graph.node("Gemm", inputs, [.int("transB", 1)])
    }
}

extension Conv2D: ONNXExportable {
    public func emitONNX(_ graph: ONNXGraph, input: String, shape: [Int]) throws -> String {
        try emit(graph, input: input, weight: weight)
    }

    func emit(_ graph: ONNXGraph, input: String, weight: Tensor) throws -> String {
        let k = weight.shape[2]
        let inputs = [input, graph.constant(weight, name: "conv_weight")] + (bias.map { [graph.constant($0, name: "conv_bias")] } ?? [])
        return graph.node("Conv", inputs, [.ints("kernel_shape", [k, k]), .ints("strides", [stride, stride]),
                                           .ints("pads", [padding, padding, padding, padding])])
    }
}

extension ConvTranspose2D: ONNXExportable {
    public func emitONNX(_ graph: ONNXGraph, input: String, shape: [Int]) throws -> String {
        try emit(graph, input: input, weight: weight)
    }

    func emit(_ graph: ONNXGraph, input: String, weight: Tensor) throws -> String {
        // PyTorch's (and GANFlow's) [in, out, kh, kw] weight is ONNX ConvTranspose's W layout.
        let k = weight.shape[2]
        let inputs = [input, graph.constant(weight, name: "deconv_weight")] + (bias.map { [graph.constant($0, name: "deconv_bias")] } ?? [])
        var attributes: [ONNXGraph.Attribute] = [.ints("kernel_shape", [k, k]), .ints("strides", [stride, stride]),
                                                 .ints("pads", [padding, padding, padding, padding])]
        if outputPadding != 0 { attributes.append(.ints("output_padding", [outputPadding, outputPadding])) }
        return graph.node("ConvTranspose", inputs, attributes)
    }
}

extension SpectralNorm: ONNXExportable {
    public func emitONNX(_ graph: ONNXGraph, input: String, shape: [Int]) throws -> String {
        let w = try withoutGradients { try normalizedWeight() }
        switch layer {
        case let l as Linear: return try l.emit(graph, input: input, weight: w)
        case let c as Conv2D: return try c.emit(graph, input: input, weight: w)
        case let c as ConvTranspose2D: return try c.emit(graph, input: input, weight: w)
        default: throw ONNXExportError("no ONNX translation for spectral norm around \(type(of: layer))")
        }
    }
}

extension ONNXGraph {
    /// `input` [N, C] or [N, C, H, W] normalised with the batch's own statistics (biased
    /// variance), as sampling does, without an affine.
    func batchNormalized(_ input: String, shape: [Int], eps: Float) -> String {
        let axes = shape.count == 4 ? [0, 2, 3] : [0]
        let mean = node("ReduceMean", [input], [.ints("axes", axes), .int("keepdims", 1)])
        let centred = node("Sub", [input, mean])
        let variance = node("ReduceMean", [node("Mul", [centred, centred])], [.ints("axes", axes), .int("keepdims", 1)])
        let deviation = node("Sqrt", [node("Add", [variance, constant(Tensor(eps), name: "bn_eps")])])
        return node("Div", [centred, deviation])
    }
}

extension BatchNorm: ONNXExportable {
    /// Normalises with the batch's own statistics (biased variance), as sampling does.
    public func emitONNX(_ graph: ONNXGraph, input: String, shape: [Int]) throws -> String {
        let c = weight.shape[0]
        let broadcast = shape.count == 4 ? [1, c, 1, 1] : [1, c]
        let normalised = graph.batchNormalized(input, shape: shape, eps: statistics.eps)
        let gamma = graph.constant(try weight.reshaped(broadcast), name: "bn_weight")
        let beta = graph.constant(try bias.reshaped(broadcast), name: "bn_bias")
        return graph.node("Add", [graph.node("Mul", [normalised, gamma]), beta])
    }
}

extension ConditionalBatchNorm: ONNXExportable {
    /// The batch's statistics, then each row's class gain and bias (Gathers of the embeddings).
    public func emitONNX(_ graph: ONNXGraph, input: String, shape: [Int]) throws -> String {
        let c = gain.shape[1]
        let perRow = graph.integers(shape.count == 4 ? [-1, c, 1, 1] : [-1, c], name: "shape")
        let layer = "ConditionalBatchNorm(\(c), \(classes) classes)"
        let g = graph.node("Reshape", [try graph.classRows(gain, name: "cbn_gain", layer: layer), perRow])
        let b = graph.node("Reshape", [try graph.classRows(bias, name: "cbn_bias", layer: layer), perRow])
        return graph.node("Add", [graph.node("Mul", [graph.batchNormalized(input, shape: shape, eps: statistics.eps), g]), b])
    }
}

extension LabelConcat: ONNXExportable {
    /// The class embedding (or the one-hot class) of each row, joined to the input as more
    /// features, or as more channels repeated over every pixel.
    public func emitONNX(_ graph: ONNXGraph, input: String, shape: [Int]) throws -> String {
        let table = try embedding ?? Tensor(shape: [classes, classes], scalars: (0..<(classes * classes)).map { $0 % (classes + 1) == 0 ? 1 : 0 })
        var e = try graph.classRows(table, name: "class_embedding", layer: "LabelConcat(\(classes) classes)")
        if shape.count == 4 {
            e = graph.node("Reshape", [e, graph.integers([-1, width, 1, 1], name: "shape")])
            if shape[2] * shape[3] > 1 {
                e = graph.node("Mul", [e, graph.constant(Tensor(repeating: 1, shape: [1, 1, shape[2], shape[3]]), name: "ones")])
            }
        }
        return graph.node("Concat", [input, e], [.int("axis", 1)])
    }
}

extension Activation: ONNXExportable {
    public func emitONNX(_ graph: ONNXGraph, input: String, shape: [Int]) throws -> String {
        switch kind {
        case .relu: graph.node("Relu", [input])
        case .leakyRelu(let slope): graph.node("LeakyRelu", [input], [.float("alpha", slope)])
        case .tanh: graph.node("Tanh", [input])
        case .sigmoid: graph.node("Sigmoid", [input])
        case .identity: graph.node("Identity", [input])
        }
    }
}

extension Reshape: ONNXExportable {
    public func emitONNX(_ graph: ONNXGraph, input: String, shape: [Int]) throws -> String {
        graph.node("Reshape", [input, graph.integers([-1] + self.shape, name: "shape")])
    }
}

extension EqualizedLinear: ONNXExportable {
    public func emitONNX(_ graph: ONNXGraph, input: String, shape: [Int]) throws -> String {
        let w = graph.constant(withoutGradients { weight * scale }, name: "linear_weight")
        guard let side = featureMap else {
            return graph.node("Gemm", [input, w, graph.constant(bias, name: "linear_bias")], [.int("transB", 1)])
        }
        let c = bias.shape[0]
        let y = graph.node("Reshape", [graph.node("Gemm", [input, w], [.int("transB", 1)]), graph.integers([-1, c, side, side], name: "shape")])
        return graph.node("Add", [y, graph.constant(try bias.reshaped([1, c, 1, 1]), name: "linear_bias")])
    }
}

extension EqualizedConv2D: ONNXExportable {
    public func emitONNX(_ graph: ONNXGraph, input: String, shape: [Int]) throws -> String {
        let k = weight.shape[2], p = k / 2
        let w = graph.constant(withoutGradients { weight * scale }, name: "conv_weight")
        return graph.node("Conv", [input, w, graph.constant(bias, name: "conv_bias")],
                          [.ints("kernel_shape", [k, k]), .ints("strides", [1, 1]), .ints("pads", [p, p, p, p])])
    }
}

extension PixelNorm: ONNXExportable {
    /// x / sqrt(mean over channels of x^2 + 1e-8).
    public func emitONNX(_ graph: ONNXGraph, input: String, shape: [Int]) throws -> String {
        let meanSquare = graph.node("ReduceMean", [graph.node("Mul", [input, input])], [.ints("axes", [1]), .int("keepdims", 1)])
        let root = graph.node("Sqrt", [graph.node("Add", [meanSquare, graph.constant(Tensor(1e-8), name: "pixelnorm_eps")])])
        return graph.node("Div", [input, root])
    }
}

extension Upsample2x: ONNXExportable {
    public func emitONNX(_ graph: ONNXGraph, input: String, shape: [Int]) throws -> String {
        let scales = graph.constant(try Tensor(shape: [4], scalars: [1, 1, 2, 2]), name: "scales")
        return graph.node("Resize", [input, "", scales], [.string("mode", "nearest"), .string("coordinate_transformation_mode", "asymmetric"),
                                                          .string("nearest_mode", "floor")])
    }
}

extension ProGANGenerator: ONNXExportable {
    /// The network at its target resolution (alpha 1): every block, then the last toRGB.
    public func emitONNX(_ graph: ONNXGraph, input: String, shape: [Int]) throws -> String {
        var x = input, s = shape
        for block in blocks {
            x = try graph.emit(block, input: x, shape: s)
            s = try block.outputShape(for: s)
        }
        return try graph.emit(toRGB[toRGB.count - 1], input: x, shape: s)
    }
}
