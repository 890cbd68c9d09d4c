import NeuralNet
import PipelineGraph
import TensorRuntime

extension LatentAdapter: ONNXExportable {
    func emitONNX(_ graph: ONNXGraph, input: String, shape: [Int]) throws -> String {
        let s = adapt(shape)
        let x = s == shape ? input : graph.node("Reshape", [input, graph.integers([-1] + s.dropFirst(), name: "shape")])
        return try graph.emit(net, input: x, shape: s)
    }
}

/// A trained generator as an ONNX model: input `z` `[batch, dim]` (and for a class-conditional
/// generator `labels` `[batch]`, int64 class indices), output `images`
/// `[batch, C, H, W]`, computing what GANFlow's sampling computes for the same batch (batch norm
/// with the batch's statistics; ProGAN and MSG-GAN at their final resolution; StyleGAN2 with each
/// layer's constant noise).
public enum GeneratorONNXExport {
    /// The network exported (the moving average with `ema`) and the encoded model, with latents
    /// truncated by `psi` as `ganflow sample --truncation` truncates them: in w inside a StyleGAN2
    /// generator, by scaling `z` at the input otherwise.
    public static func export(_ generator: any GeneratorStage, ema: Bool, name: String, truncation psi: Float = 1) throws -> (network: any Layer, model: [UInt8]) {
        guard let backed = generator as? any NetworkBacked else {
            throw StageProblem("stage type \(type(of: generator).typeName) has no network to export")
        }
        if ema && backed.core.ema == nil { throw StageProblem("this stage keeps no moving average (set 'ema' on it)") }
        let network = (ema ? backed.core.ema?.average : nil) ?? backed.core.net
        let dim = generator.latentShape.dropFirst().reduce(1, *)
        let graph = ONNXGraph()
        var inputs: [(name: String, shape: [Int], type: ONNXGraph.ElementType)] = [("z", [dim], .float32)]
        if generator.classCount != nil {
            graph.classLabels = "labels"
            inputs.append(("labels", [], .int64))
        }
        var input = "z"
        if psi != 1 {
            if generator is any TruncatingGeneratorStage {
                graph.truncation = psi
            } else {
                input = graph.node("Mul", [input, graph.constant(Tensor(psi), name: "psi")])
            }
        }
        let out: String
        let outputShape: [Int]
        do {
            out = try graph.emit(network, input: input, shape: [1, dim])
            outputShape = Array(try network.outputShape(for: [1, dim]).dropFirst())
        } catch let e as ONNXExportError {
            throw StageProblem(e.message)
        }
        graph.node("Identity", [out], output: "images")
        return (network, graph.encode(inputs: inputs, output: ("images", outputShape), graphName: name))
    }

    /// What the exported model computes for latents `z` [N, dim] and, for a conditional
    /// generator, `labels` [N]: the images of `network` (as `export` returned it) in one batch.
    public static func images(_ network: any Layer, generator: any GeneratorStage, z: Tensor, labels: Tensor?, truncation psi: Float = 1) throws -> Tensor {
        try withoutGradients {
            try ClassLabels.with(labels) {
                if let g = network as? StyleGAN2Generator {
                    var rng = PhiloxRandom(seed: 0)
                    return try g.forward(z, training: false, psi: psi, rng: &rng)
                }
                return try network.forward(LatentPath.truncated(z, psi: psi), mode: .sample)
            }
        }
    }
}
