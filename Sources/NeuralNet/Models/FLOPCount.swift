import TensorRuntime

/// Multiply-adds x2 of every Linear, Conv2D and ConvTranspose2D in one forward pass, counted the
/// way the PyTorch reference benchmark counts them.
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
    default:
        return 0
    }
}
