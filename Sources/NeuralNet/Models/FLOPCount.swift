import TensorRuntime

/// Multiply-adds x2 of every Linear, Conv2D and ConvTranspose2D in one forward pass, counted the
/// way the PyTorch reference benchmark counts them; for StyleGAN2's networks, their convolutions
/// and fully connected layers.
public func forwardFLOPs(_ layer: any Layer, input: [Int]) throws -> Double {
    switch layer {
    case let s as Sequential:
        var total = 0.0
        var shape = input
        for l in s.layers {
            total += try forwardFLOPs(l, input: shape)
            shape = try l.outputShape(for: shape)
        }
        return total
    case let l as Linear:
        return 2 * Double(input[0]) * Double(l.weight.shape[1]) * Double(l.weight.shape[0])
    case let c as Conv2D:
        let out = try c.outputShape(for: input)
        return 2 * Double(out.reduce(1, *)) * Double(c.weight.shape[1] * c.weight.shape[2] * c.weight.shape[3])
    case let l as EqualizedLinear:
        return 2 * Double(input[0]) * Double(l.weight.shape[1]) * Double(l.weight.shape[0])
    case let c as EqualizedConv2D:
        let out = try c.outputShape(for: input)
        return 2 * Double(out.reduce(1, *)) * Double(c.weight.shape[1] * c.weight.shape[2] * c.weight.shape[3])
    case let c as ConvTranspose2D:
        return 2 * Double(input.reduce(1, *)) * Double(c.weight.shape[1] * c.weight.shape[2] * c.weight.shape[3])
    case let g as StyleGAN2Generator:
        return styleGAN2GeneratorFLOPs(g, batch: Double(input[0]))
    case let d as StyleGAN2Discriminator:
        return styleGAN2DiscriminatorFLOPs(d, batch: Double(input[0]))
    default:
        return 0
    }
}

/// 2 x the multiply-adds of a convolution with `weight` [O, I, k, k] producing `side` x `side`
/// outputs per image (for a stride-2 transposed convolution, `side` is its input's side, as
/// `ConvTranspose2D` is counted).
private func convFLOPs(_ weight: Tensor, side: Int, batch: Double) -> Double {
    2 * batch * Double(side * side) * Double(weight.count)
}

private func linearFLOPs(_ l: StyleGANFullyConnected, batch: Double) -> Double {
    2 * batch * Double(l.weight.count)
}

/// The mapping network, every synthesis convolution and toRGB and their affine layers (the
/// demodulation's [N, I] x [I, O] products are left out, as the modulation's elementwise work is).
private func styleGAN2GeneratorFLOPs(_ g: StyleGAN2Generator, batch n: Double) -> Double {
    var total = g.mapping.layers.reduce(0) { $0 + linearFLOPs($1, batch: n) }
    for block in g.blocks {
        let side = block.resolution
        if let conv0 = block.conv0 { total += convFLOPs(conv0.weight, side: side / 2, batch: n) + linearFLOPs(conv0.affine, batch: n) }
        total += convFLOPs(block.conv1.weight, side: side, batch: n) + linearFLOPs(block.conv1.affine, batch: n)
        total += convFLOPs(block.toRGB.weight, side: side, batch: n) + linearFLOPs(block.toRGB.affine, batch: n)
    }
    return total
}

/// Every block's fromRGB, convolutions and skip (resnet blocks), and the 4x4 epilogue.
private func styleGAN2DiscriminatorFLOPs(_ d: StyleGAN2Discriminator, batch n: Double) -> Double {
    var total = 0.0
    for block in d.blocks {
        let side = block.resolution
        if let fromRGB = block.fromRGB { total += convFLOPs(fromRGB.weight, side: side, batch: n) }
        total += convFLOPs(block.conv0.weight, side: side, batch: n)
        total += convFLOPs(block.conv1.weight, side: side / 2, batch: n)
        if let skip = block.skip { total += convFLOPs(skip.weight, side: side / 2, batch: n) }
    }
    return total + convFLOPs(d.epilogueConv.weight, side: 4, batch: n) + linearFLOPs(d.fc, batch: n) + linearFLOPs(d.out, batch: n)
}
