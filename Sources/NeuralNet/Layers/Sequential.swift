import TensorRuntime

/// Layers applied in order; children are named by index (`0.weight`, `3.running_mean`).
///
/// A `BatchNorm` followed by a ReLU or leaky ReLU `Activation` runs as one fused op
/// (`BatchNorm.forward(_:mode:leakySlope:)`): the same values and gradients, with one pass over
/// the activations fewer each way.
public final class Sequential: Layer {
    public let layers: [any Layer]

    public init(_ layers: [any Layer]) { self.layers = layers }

    public func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor {
        var y = x
        var i = 0
        while i < layers.count {
            if let norm = layers[i] as? BatchNorm, i + 1 < layers.count,
               let slope = (layers[i + 1] as? Activation)?.kind.leakySlope {
                y = try norm.forward(y, mode: mode, leakySlope: slope)
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
