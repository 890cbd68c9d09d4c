import Foundation
import GANFlowTestSupport
import NeuralNet
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

@Suite struct GeneratorONNXExportTests {
    static let mlp = #""z": { "type": "noise.normal", "batch": 4, "dim": 16 }, "G": { "type": "generator.mlp", "input": "z.samples", "hidden": [8], "size": 4 }, "idle": { "type": "test.idle" }"#
    static let stylegan2 = #""z": { "type": "noise.normal", "batch": 4, "dim": 16 }, "G": { "type": "generator.stylegan2", "input": "z.samples", "resolution": 8, "wDim": 5, "mappingLayers": 2, "channelBase": 32, "channelMax": 4 }, "idle": { "type": "test.idle" }"#
    /// Class-conditional DCGANs: conditional batch norm, and a class embedding joined to the latent.
    static func conditional(_ method: String) -> String {
        #""z": { "type": "noise.normal", "batch": 4, "dim": 16 }, "y": { "type": "noise.classes", "classes": 10, "batch": 4 }, "G": { "type": "generator.dcgan", "input": "z.samples", "resolution": 16, "width": 8, "labels": "y.labels", "conditioning": "\#(method)", "classes": 10 }, "idle": { "type": "test.idle" }"#
    }

    struct Decoded {
        var fields: [ProtobufField]
        var graph: [ProtobufField] { fields.first(7)!.message! }
        var nodes: [(op: String, inputs: [String], outputs: [String], attributes: [String: ProtobufField])] {
            graph.all(1).map { n in
                let f = n.message!
                var attributes: [String: ProtobufField] = [:]
                for a in f.all(5) { let m = a.message!; attributes[m.first(1)!.string!] = a }
                return (f.first(4)!.string!, f.all(1).map { $0.string! }, f.all(2).map { $0.string! }, attributes)
            }
        }
        /// Initializers by name: dims and Float32 values (raw little-endian) or Int64 values.
        var initializers: [String: (dims: [Int], floats: [Float], ints: [Int])] {
            var out: [String: ([Int], [Float], [Int])] = [:]
            for t in graph.all(5) {
                let f = t.message!
                let raw = f.first(9)?.bytes ?? []
                let floats = stride(from: 0, to: raw.count, by: 4).map { i in
                    Float(bitPattern: UInt32(raw[i]) | UInt32(raw[i + 1]) << 8 | UInt32(raw[i + 2]) << 16 | UInt32(raw[i + 3]) << 24)
                }
                var ints: [Int] = []
                if let packed = f.first(7) { ints = packed.packedInts ?? [] }
                out[f.first(8)!.string!] = (f.all(1).map { $0.int! }, floats, ints)
            }
            return out
        }
        /// A value info's name and dims (nil for the symbolic batch).
        func valueInfo(_ field: Int) -> (String, [Int?]) {
            let (name, dims, _) = valueInfos(field)[0]
            return (name, dims)
        }
        /// Every value info of `field` (11: the inputs): name, dims and element type.
        func valueInfos(_ field: Int) -> [(name: String, dims: [Int?], type: Int)] {
            graph.all(field).map { info in
                let v = info.message!
                let tensor = v.first(2)!.message!.first(1)!.message!
                return (v.first(1)!.string!, tensor.first(2)!.message!.all(1).map { $0.message!.first(1)?.int }, tensor.first(1)!.int!)
            }
        }
    }

    func export(_ stages: String) throws -> (any Layer, Decoded) {
        let p = try pipeline(stages: stages, schedule: #"[{ "run": "idle" }]"#)
        let (network, model) = try GeneratorONNXExport.export(stage(p, "G", as: (any GeneratorStage).self), ema: false, name: "G")
        return (network, Decoded(fields: try decodeProtobuf(model)))
    }

    @Test(arguments: [GeneratorSamplerTests.dcgan, GeneratorSamplerTests.progan, mlp, stylegan2, conditional("cbn"), conditional("concat")])
    func modelsDecodeIntoAWellFormedGraph(stages: String) throws {
        let (network, d) = try export(stages)
        #expect(d.fields.first(1)?.int == 8)  // IR version
        let opset = d.fields.first(8)!.message!
        #expect(opset.first(1)?.string == "" && opset.first(2)?.int == 17)
        let inputs = d.valueInfos(11), (outName, outDims) = d.valueInfo(12)
        #expect(inputs.first.map { [$0.name == "z", $0.dims == [nil, 16], $0.type == 1] } == [true, true, true])
        // A conditional generator also takes each row's class: int64 [batch].
        let conditional = stages.contains("conditioning")
        #expect(inputs.count == (conditional ? 2 : 1))
        if conditional { #expect(inputs.last.map { [$0.name == "labels", $0.dims == [nil], $0.type == 7] } == [true, true, true]) }
        let expected = try network.outputShape(for: [1, 16]).dropFirst().map { Optional($0) }
        #expect(outName == "images" && outDims == [nil] + expected)
        // Every input is a graph input, an initializer or an earlier node's output; the last output is 'images'.
        let initializers = d.initializers
        var known: Set<String> = Set(inputs.map(\.name) + [""])
        known.formUnion(initializers.keys)
        for n in d.nodes {
            for i in n.inputs { #expect(known.contains(i), "\(n.op) reads unknown '\(i)'") }
            known.formUnion(n.outputs)
        }
        #expect(d.nodes.last?.outputs == ["images"])
        // Initializers hold the network's parameters (scaled as the forward pass scales them); of
        // ProGAN's toRGB layers only the final resolution's runs.
        let finalRGB = network.namedParameters.compactMap { $0.0.hasPrefix("toRGB.") ? $0.0.split(separator: ".")[1] : nil }.max()
        let parameterCount = network.namedParameters.filter { !$0.0.hasPrefix("toRGB.") || $0.0.hasPrefix("toRGB.\(finalRGB!).") }
            .reduce(0) { $0 + $1.1.count }
        #expect(initializers.values.reduce(0) { $0 + $1.floats.count } >= parameterCount)
    }

    @Test func dcganNodesCarryTheLayersAttributesAndWeights() throws {
        let (network, d) = try export(GeneratorSamplerTests.dcgan)
        let nodes = d.nodes, initializers = d.initializers
        let ops = nodes.map(\.op)
        #expect(ops.first == "Reshape" && ops.filter { $0 == "ConvTranspose" }.count == 3 && ops.contains("Tanh"))
        #expect(initializers[nodes[0].inputs[1]]?.ints == [-1, 16, 1, 1])
        // The second transposed convolution: kernel 4, stride 2, padding 1, its weight bit for bit.
        let deconv = nodes.filter { $0.op == "ConvTranspose" }[1]
        #expect(deconv.attributes["strides"]?.message?.all(8).map { $0.int! } == [2, 2])
        #expect(deconv.attributes["pads"]?.message?.all(8).map { $0.int! } == [1, 1, 1, 1])
        let weight = network.namedParameters.first { $0.0 == "3.weight" }!.1
        #expect(initializers[deconv.inputs[1]]?.floats == weight.scalars && initializers[deconv.inputs[1]]?.dims == weight.shape)
        // Batch norm uses the batch's statistics: means over axes 0, 2, 3.
        let mean = nodes.first { $0.op == "ReduceMean" }!
        #expect(mean.attributes["axes"]?.message?.all(8).map { $0.int! } == [0, 2, 3])
    }

    @Test func truncationIsBuiltInWhereSamplingAppliesIt() throws {
        func export(_ stages: String, psi: Float) throws -> Decoded {
            let p = try pipeline(stages: stages, schedule: #"[{ "run": "idle" }]"#)
            let g = stage(p, "G", as: (any GeneratorStage).self)
            return Decoded(fields: try decodeProtobuf(try GeneratorONNXExport.export(g, ema: false, name: "G", truncation: psi).model))
        }
        // DCGAN: the latent scaled by psi at the input, then the same graph.
        let (plain, truncated) = (try export(GeneratorSamplerTests.dcgan, psi: 1), try export(GeneratorSamplerTests.dcgan, psi: 0.7))
        #expect(truncated.nodes.count == plain.nodes.count + 1)
        let scale = truncated.nodes[0]
        #expect(scale.op == "Mul" && scale.inputs[0] == "z" && truncated.initializers[scale.inputs[1]]?.floats == [0.7])
        // StyleGAN2: w_avg + (w - w_avg) psi after the mapping network, with the tracked mean w.
        let (w1, w07) = (try export(Self.stylegan2, psi: 1), try export(Self.stylegan2, psi: 0.7))
        #expect(w07.nodes.count == w1.nodes.count + 3)
        #expect(w07.nodes[0].inputs == w1.nodes[0].inputs && w1.initializers.keys.allSatisfy { !$0.hasPrefix("w_avg") })
        #expect(w07.initializers.first { $0.key.hasPrefix("w_avg") }?.value.dims == [1, 5])
        #expect(w07.initializers.first { $0.key.hasPrefix("psi") }?.value.floats == [0.7])
    }

    @Test func aMissingMovingAverageIsNamed() throws {
        let p = try pipeline(stages: #""z": { "type": "noise.normal", "batch": 4, "dim": 16 }, "G": { "type": "generator.dcgan", "input": "z.samples", "resolution": 16, "width": 8 }, "idle": { "type": "test.idle" }"#,
                             schedule: #"[{ "run": "idle" }]"#)
        do {
            _ = try GeneratorONNXExport.export(stage(p, "G", as: (any GeneratorStage).self), ema: true, name: "G")
            Issue.record("expected an error")
        } catch let e as StageProblem {
            #expect(e.message == "this stage keeps no moving average (set 'ema' on it)")
        }
    }
}
