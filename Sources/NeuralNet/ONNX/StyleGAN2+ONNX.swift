import TensorRuntime

// StyleGAN2's generator as ONNX nodes computing what `forward(z, mode: .sample)` computes: the
// mapping network, one `w` for every layer (no mixing; truncated towards the mean w when the
// graph's `truncation` is below 1), each layer's constant noise (`noise_const` times its
// strength; stylegan2-ada-pytorch's `noise_mode='const'`), and the modulated convolutions as
// GANFlow runs them: activations scaled by the styles, one ordinary convolution with the shared
// weight, then the demodulation coefficients.

extension ONNXGraph {
    /// A Float32 scalar initializer.
    func scalar(_ value: Float, name: String) -> String { constant(Tensor(value), name: name) }

    /// LeakyReLU 0.2 times sqrt(2), StyleGAN2's activation (`biasActivation`'s defaults).
    func styleGANLeaky(_ x: String) -> String {
        node("Mul", [node("LeakyRelu", [x], [.float("alpha", 0.2)]), scalar(Float(2).squareRoot(), name: "lrelu_gain")])
    }

    /// `upfirdn2d` of `x` (`channels` channels) with `filter` and `gain`, upsampling by `up` (1 or
    /// 2), padding `padding` on each side: a depthwise convolution (a depthwise transposed
    /// convolution of stride 2 when upsampling, whose zero-stuffing is `upfirdn2d`'s).
    func fir(_ x: String, channels: Int, filter: FIRFilter, up: Int, padding: (before: Int, after: Int), gain: Float) throws -> String {
        let taps = filter.taps, k = taps.count
        // upfirdn2d convolves (flips the filter); Conv correlates, so it takes the flipped taps,
        // while a transposed convolution's scatter is already a convolution.
        let axis = up == 1 ? Array(taps.reversed()) : taps
        var values: [Float] = []
        values.reserveCapacity(channels * k * k)
        for _ in 0..<channels { for i in 0..<k { for j in 0..<k { values.append(axis[i] * axis[j] * gain) } } }
        let weight = constant(try Tensor(shape: [channels, 1, k, k], scalars: values), name: "fir_filter")
        if up == 1 {
            guard padding.before >= 0, padding.after >= 0 else {
                throw ONNXExportError("FIR filter with negative padding (\(padding.before), \(padding.after)) has no ONNX translation")
            }
            let (b, a) = padding
            return node("Conv", [x, weight], [.int("group", channels), .ints("kernel_shape", [k, k]), .ints("pads", [b, b, a, a])])
        }
        // The transposed convolution's full output is (H - 1) 2 + k long; upfirdn2d's starts
        // k - 1 - before into it and is H 2 + before + after - k + 1 long.
        let (b, a) = (k - 1 - padding.before, k - 2 - padding.after)
        guard up == 2, b >= 0, a >= 0 else {
            throw ONNXExportError("FIR upsampling by \(up) with padding (\(padding.before), \(padding.after)) has no ONNX translation")
        }
        return node("ConvTranspose", [x, weight], [.int("group", channels), .ints("kernel_shape", [k, k]), .ints("strides", [2, 2]),
                                                   .ints("pads", [b, b, a, a])])
    }

    /// `x` [N, C, H, W] times `styles` [N, C] broadcast over the pixels.
    func modulate(_ x: String, _ styles: String, channels: Int) -> String {
        node("Mul", [x, node("Reshape", [styles, integers([-1, channels, 1, 1], name: "shape")])])
    }

    /// `x` plus a per-channel `bias` [C].
    func addBias(_ x: String, _ bias: Tensor) throws -> String {
        node("Add", [x, constant(try bias.reshaped([1, bias.count, 1, 1]), name: "bias")])
    }
}

extension StyleGANFullyConnected {
    func emitONNX(_ graph: ONNXGraph, input: String) -> String {
        let w = graph.constant(withoutGradients { weight * weightGain }, name: "fc_weight")
        let b = graph.constant(withoutGradients { biasGain == 1 ? bias : bias * biasGain }, name: "fc_bias")
        let y = graph.node("Gemm", [input, w, b], [.int("transB", 1)])
        return leaky ? graph.styleGANLeaky(y) : y
    }
}

extension SynthesisLayer {
    func emitONNX(_ graph: ONNXGraph, input: String, w: String) throws -> String {
        let (o, i, k) = (weight.shape[0], weight.shape[1], weight.shape[2])
        let styles = affine.emitONNX(graph, input: w)
        let x = graph.modulate(input, styles, channels: i)
        var y: String
        if up == 1 {
            y = graph.node("Conv", [x, graph.constant(weight, name: "conv_weight")],
                           [.ints("kernel_shape", [k, k]), .ints("pads", [1, 1, 1, 1])])
        } else {
            // conv2dResample's up-2 path: a stride-2 transposed convolution with the weight read
            // as [I, O, k, k], then the filter with gain 4 and its padding for padding 1.
            let w = graph.constant(try withoutGradients { try weight.transposed(0, 1).copy() }, name: "conv_weight")
            y = graph.node("ConvTranspose", [x, w], [.ints("kernel_shape", [k, k]), .ints("strides", [2, 2])])
            let f = FIRFilter.binomial.taps.count
            y = try graph.fir(y, channels: o, filter: .binomial, up: 1, padding: (1 + (f + 1) / 2 - (k - 1), 1 + (f - 2) / 2 - (k - 2)), gain: 4)
        }
        // Demodulation: rsqrt((styles^2) (sum over the kernel of weight^2)^T + 1e-8) per sample and output channel.
        let energyWeight = try withoutGradients { try weight.square().sum(axes: [2, 3]).transposed(0, 1).copy() }
        let energy = graph.node("MatMul", [graph.node("Mul", [styles, styles]), graph.constant(energyWeight, name: "demod_weight")])
        let root = graph.node("Sqrt", [graph.node("Add", [energy, graph.scalar(1e-8, name: "demod_eps")])])
        let coefficients = graph.node("Div", [graph.scalar(1, name: "one"), root])
        y = graph.modulate(y, coefficients, channels: o)
        let noise = try withoutGradients { try noiseConst.reshaped([1, 1, resolution, resolution]) * noiseStrength }
        y = graph.node("Add", [y, graph.constant(noise, name: "noise_const")])
        return graph.styleGANLeaky(try graph.addBias(y, bias))
    }
}

extension ToRGBLayer {
    func emitONNX(_ graph: ONNXGraph, input: String, w: String) throws -> String {
        let i = weight.shape[1]
        let styles = graph.node("Mul", [affine.emitONNX(graph, input: w), graph.scalar(weightGain, name: "torgb_gain")])
        let y = graph.node("Conv", [graph.modulate(input, styles, channels: i), graph.constant(weight, name: "torgb_weight")],
                           [.ints("kernel_shape", [1, 1])])
        return try graph.addBias(y, bias)
    }
}

extension SynthesisBlock {
    /// The block's features and image from those below (nil for the first block), with `w` for
    /// every layer.
    func emitONNX(_ graph: ONNXGraph, features: String?, image: String?, w: String) throws -> (String, String) {
        var h: String
        if let constant {
            // [1, C, 4, 4]: the modulation's broadcast against the styles [N, C, 1, 1] makes the batch.
            h = try conv1.emitONNX(graph, input: graph.constant(try constant.reshaped([1] + constant.shape), name: "const"), w: w)
        } else {
            h = try conv0!.emitONNX(graph, input: features!, w: w)
            h = try conv1.emitONNX(graph, input: h, w: w)
        }
        let rgb = try toRGB.emitONNX(graph, input: h, w: w)
        guard let image else { return (h, rgb) }
        let k = FIRFilter.binomial.taps.count
        let up = try graph.fir(image, channels: toRGB.weight.shape[0], filter: .binomial, up: 2, padding: ((k + 1) / 2, (k - 2) / 2), gain: 4)
        return (h, graph.node("Add", [up, rgb]))
    }
}

extension StyleGAN2Generator: ONNXExportable {
    public func emitONNX(_ graph: ONNXGraph, input: String, shape: [Int]) throws -> String {
        _ = try outputShape(for: shape)
        var w = try PixelNorm().emitONNX(graph, input: input, shape: shape)
        if let embed = mapping.embed {
            // The embedding of a one-hot class is a row of weight^T gain + bias: a Gather of that table.
            let table = try withoutGradients { try (embed.weight * embed.weightGain).transposed() + (embed.bias * embed.biasGain).reshaped([1, mapping.wDim]) }
            let rows = try graph.classRows(table, name: "mapping_embed", layer: "StyleGAN2 mapping network (\(mapping.classes) classes)")
            let embedded = try PixelNorm().emitONNX(graph, input: rows, shape: [shape[0], mapping.wDim])
            w = graph.node("Concat", [w, embedded], [.int("axis", 1)])
        }
        for layer in mapping.layers { w = layer.emitONNX(graph, input: w) }
        if graph.truncation != 1 {
            // MappingNetwork.truncated: w_avg + (w - w_avg) psi.
            guard let wAverage = mapping.wAverage else { throw ONNXExportError("the mapping network keeps no mean w to truncate towards") }
            let average = graph.constant(try wAverage.reshaped([1, mapping.wDim]), name: "w_avg")
            w = graph.node("Add", [average, graph.node("Mul", [graph.node("Sub", [w, average]), graph.scalar(graph.truncation, name: "psi")])])
        }
        var features: String?, image: String?
        for block in blocks {
            let (h, rgb) = try block.emitONNX(graph, features: features, image: image, w: w)
            (features, image) = (h, rgb)
        }
        return image!
    }
}
