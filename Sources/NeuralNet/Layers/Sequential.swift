import TensorRuntime

/// Layers applied in order; children are named by index (`0.weight`, `3.running_mean`).
///
/// A layer that can take in the ReLU or leaky ReLU `Activation` that follows it
/// (`ActivationFusing`: batch norm, convolutions) runs the two as one op: the same values and
/// gradients, without a pass over the activations of its own each way.
public final class Sequential: Layer {
    public let layers: [any Layer]

    /// Whether the layers' bf16 convolutions store their results channels last
    /// (`ActivationLayout.storingConvolutionResultsChannelsLast`): for networks of convolutions,
    /// batch norm and activations only, such as a DCGAN.
    public var convolutionResultsChannelsLast = false

    public init(_ layers: [any Layer]) { self.layers = layers }

    public func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor {
        guard convolutionResultsChannelsLast else { return try forwardLayers(x, mode: mode) }
        return try ActivationLayout.storingConvolutionResultsChannelsLast { try forwardLayers(x, mode: mode) }
    }

    private func forwardLayers(_ x: Tensor, mode: ForwardMode) throws -> Tensor {
        var y = x
        var i = 0
        while i < layers.count {
            if let fusing = layers[i] as? any ActivationFusing, i + 1 < layers.count,
               let slope = (layers[i + 1] as? Activation)?.kind.leakySlope {
                y = try fusing.forward(y, mode: mode, leakySlope: slope)
                i += 2
                continue
            }
            y = try layers[i].forward(y, mode: mode)
            i += 1
        }
        return y
    }

    public var namedParameters: [(String, Tensor)] {
        layers.enumerated().flatMap { i, l in l.namedParameters.map { ("\(i).\($0.0)", $0.1) } }
    }

    public var namedBuffers: [(String, Tensor)] {
        layers.enumerated().flatMap { i, l in l.namedBuffers.map { ("\(i).\($0.0)", $0.1) } }
    }

    public var namedCounters: [(String, Int)] {
        layers.enumerated().flatMap { i, l in l.namedCounters.map { ("\(i).\($0.0)", $0.1) } }
    }

    public func setCounter(_ name: String, _ value: Int) {
        guard let dot = name.firstIndex(of: "."), let i = Int(name[..<dot]), i < layers.count else { return }
        layers[i].setCounter(String(name[name.index(after: dot)...]), value)
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        var s = input
        for l in layers { s = try l.outputShape(for: s) }
        return s
    }
}

/// A layer that can apply a ReLU or leaky ReLU to its result in the same op, which `Sequential`
/// uses for an `Activation` that follows it.
public protocol ActivationFusing: Layer {
    /// `forward(x, mode:)` followed by a leaky ReLU of `leakySlope` (0: a ReLU), or by nothing
    /// when it is nil.
    func forward(_ x: Tensor, mode: ForwardMode, leakySlope: Float?) throws -> Tensor
}

extension ActivationFusing {
    /// The layer's own forward: the fused one with no activation.
    public func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor {
        try forward(x, mode: mode, leakySlope: nil)
    }
}
