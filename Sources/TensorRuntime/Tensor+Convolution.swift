/// A height and width pair for convolution strides, padding and dilation.
///
/// An integer literal means the same value for both: `stride: 2`.
public struct Size2D: Hashable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var height: Int
    public var width: Int

    public init(_ height: Int, _ width: Int) {
        self.height = height
        self.width = width
    }

    public init(integerLiteral value: Int) {
        self.init(value, value)
    }

    var pair: [Int] { [height, width] }
    public var description: String { "(\(height), \(width))" }
}

/// 2-D convolution of `x` [N, C, H, W] with `weight` [O, C, KH, KW] plus an optional `bias` [O]
/// (PyTorch's `conv2d`, cross-correlation, zero padding).
///
/// The result is [N, O, OH, OW] with OH = (H + 2 padding - dilation (KH - 1) - 1) / stride + 1.
/// Gradients of every order: the input gradient is a transposed convolution and the weight
/// gradient a recorded weight-gradient op, both differentiable again.
///
/// With `leakySlope`, the result is `leakyRelu(conv2d(...), negativeSlope: leakySlope)` (0: a
/// ReLU) as one recorded op: the kernel applies the activation as it writes (a oneDNN post-op),
/// and the backward multiplies the incoming gradient by the activation's mask, read from the
/// result (positive exactly where the convolution's value is), before the convolution's own
/// backward. Values and gradients of every order are those of the two ops one after the other,
/// up to float rounding (`ConvolutionActivationTests`).
public func conv2d(
    _ x: Tensor, weight: Tensor, bias: Tensor? = nil,
    stride: Size2D = 1, padding: Size2D = 0, dilation: Size2D = 1, leakySlope: Float? = nil
) throws -> Tensor {
    try convolution(x, weight, bias, convGeometry("conv2d", x.shape, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation),
                    activation: leakySlope.map { ConvActivation(slope: $0, training: true) })
}

/// `conv2d(...).relu()`, the ReLU computed in the convolution's own pass (a oneDNN post-op,
/// with no separate pass and no intermediate tensor) when nothing is recorded for autograd:
/// inside `withoutGradients`, or when no operand requires gradients. Otherwise the two recorded
/// ops, so that gradients are those of `conv2d` followed by `relu`.
///
/// Without recording, the result keeps its copy in the kernel's layout (`keepLayoutCopies()`),
/// so that a convolution reading it next skips the conversion: do not write it in place.
///
/// For inference in the kernels' own layout (`ActivationLayout`), `x` may be channels last
/// (`layout`), and so may the result (`resultLayout`, by default `layout`); then nothing is
/// recorded.
public func conv2dReLU(
    _ x: Tensor, weight: Tensor, bias: Tensor? = nil,
    stride: Size2D = 1, padding: Size2D = 0, dilation: Size2D = 1,
    layout: ActivationLayout = .channelsFirst, resultLayout: ActivationLayout? = nil
) throws -> Tensor {
    let op = "conv2dReLU"
    let recording = GradMode.isEnabled && (x.requiresGrad || weight.requiresGrad || bias?.requiresGrad == true)
    let resultLayout = resultLayout ?? layout
    if layout == .channelsLast || resultLayout == .channelsLast {
        try layout.check(x, op)
        if recording {
            throw TensorError("\(op): channels-last tensors are for inference; compute without gradients (withoutGradients)")
        }
        let geometry = try convGeometry(op, layout.logicalShape(x.shape), weight: weight, bias: bias,
                                        stride: stride, padding: padding, dilation: dilation)
        return try ConvolutionKernels.forward(x, weight, bias, geometry, activation: .inferenceReLU, layouts: (layout, resultLayout)).0
    }
    let geometry = try convGeometry(op, x.shape, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation)
    if recording {
        return try convolution(x, weight, bias, geometry).relu()
    }
    return try ConvolutionKernels.forward(x, weight, bias, geometry, activation: .inferenceReLU, layouts: (.channelsFirst, .channelsFirst)).0
}

/// The checked geometry of `op`, a conv2d of an input of shape `input` with `weight` and `bias`.
private func convGeometry(
    _ op: String, _ input: [Int], weight: Tensor, bias: Tensor?, stride: Size2D, padding: Size2D, dilation: Size2D
) throws -> ConvGeometry {
    guard input.count == 4, weight.rank == 4 else {
        throw TensorError("\(op): input \(describe(input)) must be [N, C, H, W] and weight \(describe(weight.shape)) [O, C, KH, KW]")
    }
    try checkWindow(op, stride: stride, padding: padding, dilation: dilation)
    guard input[1] == weight.shape[1] else {
        throw TensorError("\(op): input \(describe(input)) has \(input[1]) channels but weight \(describe(weight.shape)) expects \(weight.shape[1])")
    }
    var outputSize: [Int] = []
    for axis in 0..<2 {
        let size = input[2 + axis] + 2 * padding.pair[axis]
        let extent = dilation.pair[axis] * (weight.shape[2 + axis] - 1) + 1
        guard size >= extent else {
            throw TensorError("\(op): kernel \(weight.shape[2])x\(weight.shape[3]) of weight \(describe(weight.shape)) with dilation \(dilation) is larger than input \(describe(input)) padded by \(padding)")
        }
        outputSize.append((size - extent) / stride.pair[axis] + 1)
    }
    if let bias, bias.shape != [weight.shape[0]] {
        throw TensorError("\(op): bias \(describe(bias.shape)) does not match weight \(describe(weight.shape)); expected [\(weight.shape[0])]")
    }
    return ConvGeometry(
        input: input, weight: weight.shape, output: [input[0], weight.shape[0]] + outputSize,
        stride: stride.pair, padding: padding.pair, dilation: dilation.pair)
}

/// 2-D transposed convolution of `x` [N, Cin, H, W] with `weight` [Cin, Cout, KH, KW] plus an
/// optional `bias` [Cout] (PyTorch's `conv_transpose2d`, the gradient of a conv2d's input).
///
/// The result is [N, Cout, OH, OW] with
/// OH = (H - 1) stride - 2 padding + dilation (KH - 1) + outputPadding + 1.
/// `outputPadding` must be smaller than `stride`; it picks among the input sizes that a conv2d
/// with this stride maps to the same output size.
public func convTranspose2d(
    _ x: Tensor, weight: Tensor, bias: Tensor? = nil,
    stride: Size2D = 1, padding: Size2D = 0, outputPadding: Size2D = 0, dilation: Size2D = 1
) throws -> Tensor {
    let op = "convTranspose2d"
    guard x.rank == 4, weight.rank == 4 else {
        throw TensorError("\(op): input \(describe(x.shape)) must be [N, Cin, H, W] and weight \(describe(weight.shape)) [Cin, Cout, KH, KW]")
    }
    try checkWindow(op, stride: stride, padding: padding, dilation: dilation)
    guard x.shape[1] == weight.shape[0] else {
        throw TensorError("\(op): input \(describe(x.shape)) has \(x.shape[1]) channels but weight \(describe(weight.shape)) expects \(weight.shape[0])")
    }
    guard outputPadding.height >= 0, outputPadding.width >= 0,
          outputPadding.height < stride.height, outputPadding.width < stride.width else {
        throw TensorError("\(op): output padding \(outputPadding) must be non-negative and smaller than stride \(stride)")
    }
    var outputSize: [Int] = []
    for axis in 0..<2 {
        let size = (x.shape[2 + axis] - 1) * stride.pair[axis] - 2 * padding.pair[axis]
            + dilation.pair[axis] * (weight.shape[2 + axis] - 1) + outputPadding.pair[axis] + 1
        guard size >= 1 else {
            throw TensorError("\(op): input \(describe(x.shape)) with weight \(describe(weight.shape)) and padding \(padding) gives an empty output")
        }
        outputSize.append(size)
    }
    if let bias, bias.shape != [weight.shape[1]] {
        throw TensorError("\(op): bias \(describe(bias.shape)) does not match weight \(describe(weight.shape)); expected [\(weight.shape[1])]")
    }
    let geometry = ConvGeometry(
        input: [x.shape[0], weight.shape[1]] + outputSize, weight: weight.shape, output: x.shape,
        stride: stride.pair, padding: padding.pair, dilation: dilation.pair)
    return try transposedConvolution(x, weight, bias, geometry)
}

private func checkWindow(_ op: String, stride: Size2D, padding: Size2D, dilation: Size2D) throws {
    guard stride.height >= 1, stride.width >= 1 else { throw TensorError("\(op): stride \(stride) must be positive") }
    guard dilation.height >= 1, dilation.width >= 1 else { throw TensorError("\(op): dilation \(dilation) must be positive") }
    guard padding.height >= 0, padding.width >= 0 else { throw TensorError("\(op): padding \(padding) must not be negative") }
}

// The three recorded ops below are closed under differentiation. With F = convolution,
// D = transposed convolution and W = weight gradient, all bilinear:
//   <G, F(x, w)> = <D(G, w), x> = <W(x, G), w>
// so each one's gradients are the other two applied to the incoming gradient.

/// F: y = conv(x, w) + b on `geometry`; with a (training) `activation`, that activation of it.
///
/// The first-order backward (the usual case, when the backward pass is not itself recorded)
/// reorders the incoming gradient once for both kernels, and reuses the forward's copy of x in
/// the kernel layout for the weight gradient; the values are the same as through the recorded
/// ops below, only the repeated layout conversions are skipped.
func convolution(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ geometry: ConvGeometry, activation: ConvActivation? = nil) throws -> Tensor {
    let (out, made) = try ConvolutionKernels.forward(x, w, b, geometry, activation: activation)
    let savedInput = GradMode.isEnabled && w.requiresGrad ? made.input : nil
    let name = activation == nil ? "conv2d" : "conv2d_leaky_relu"
    let channelsLast = ConvGeometry.channelsLastScope.value
    return Tensor.recordUsingOutput(out, name, b.map { [x, w, $0] } ?? [x, w]) { g, y, need in
      try ConvGeometry.channelsLastScope.with(channelsLast) {
        // The activation's backward first: g * (y > 0 ? 1 : slope), linear in g.
        let g = try activation.map { try leakyGradient(g, output: y, slope: $0.slope, gain: 1) } ?? g
        let biasGrad: [Tensor?] = b == nil ? [] : [need[2] ? try g.sum(axes: [0, 2, 3]) : nil]
        if !GradMode.isEnabled {
            var dx: Tensor?, dw: Tensor?, gCopy: LayoutCopy?
            if need[0] {
                let r = try ConvolutionKernels.backwardData(g, w, geometry)
                (dx, gCopy) = (r.0, r.1.output)
            }
            if need[1] {
                dw = try ConvolutionKernels.backwardWeights(
                    x, g, geometry, prepared: ConvCopies(input: savedInput, output: gCopy)).0
            }
            return [dx, dw] + biasGrad
        }
        return [
            need[0] ? try transposedConvolution(g, w, nil, geometry) : nil,
            need[1] ? try convolutionWeightGradient(x, g, geometry) : nil,
        ] + biasGrad
      }
    }
}

/// D: x' = conv^T(y, w) + b, the shape of `geometry.input`.
///
/// As for F, the first-order backward reorders the incoming gradient once and reuses the
/// forward's copy of y for the weight gradient.
func transposedConvolution(_ y: Tensor, _ w: Tensor, _ b: Tensor?, _ geometry: ConvGeometry) throws -> Tensor {
    let (out, made) = try ConvolutionKernels.backwardData(y, w, geometry)
    if let b { addChannelBias(out, b) }
    let savedY = GradMode.isEnabled && w.requiresGrad ? made.output : nil
    let channelsLast = ConvGeometry.channelsLastScope.value
    return Tensor.record(out, "conv_transpose2d", b.map { [y, w, $0] } ?? [y, w]) { g, need in
      try ConvGeometry.channelsLastScope.with(channelsLast) {
        let biasGrad: [Tensor?] = b == nil ? [] : [need[2] ? try g.sum(axes: [0, 2, 3]) : nil]
        if !GradMode.isEnabled {
            var dy: Tensor?, dw: Tensor?, gCopy: LayoutCopy?
            if need[0] {
                let r = try ConvolutionKernels.forward(g, w, nil, geometry)
                (dy, gCopy) = (r.0, r.1.input)
            }
            if need[1] {
                dw = try ConvolutionKernels.backwardWeights(
                    g, y, geometry, prepared: ConvCopies(input: gCopy, output: savedY)).0
            }
            return [dy, dw] + biasGrad
        }
        return [
            need[0] ? try convolution(g, w, nil, geometry) : nil,
            need[1] ? try convolutionWeightGradient(g, y, geometry) : nil,
        ] + biasGrad
      }
    }
}

/// W: dw = the gradient of <dy, conv(x, w)> with respect to w, the shape of `geometry.weight`.
func convolutionWeightGradient(_ x: Tensor, _ dy: Tensor, _ geometry: ConvGeometry) throws -> Tensor {
    let out = try ConvolutionKernels.backwardWeights(x, dy, geometry).0
    let channelsLast = ConvGeometry.channelsLastScope.value
    return Tensor.record(out, "conv2d_weight_grad", [x, dy]) { g, need in
        try ConvGeometry.channelsLastScope.with(channelsLast) { [
            need[0] ? try transposedConvolution(dy, g, nil, geometry) : nil,
            need[1] ? try convolution(x, g, nil, geometry) : nil,
        ] }
    }
}

/// Adds `bias[c]` to every element of channel c of an [N, C, H, W] tensor, contiguous or stored
/// channels last, in place.
private func addChannelBias(_ out: Tensor, _ bias: Tensor) {
    let b = bias.contiguousData()
    if out.isChannelsLastDense {
        let c = out.shape[1], pb = b.data, p = out.data
        for row in 0..<(out.count / c) {
            let r = p + row * c
            for k in 0..<c { r[k] += pb[k] }
        }
        withExtendedLifetime(b) {}
        return
    }
    let n = out.shape[0], c = out.shape[1], plane = out.shape[2] * out.shape[3]
    var p = out.data
    let pb = b.data
    for _ in 0..<n {
        for ch in 0..<c {
            let v = pb[ch]
            for i in 0..<plane { p[i] += v }
            p += plane
        }
    }
    withExtendedLifetime(b) {}
}
