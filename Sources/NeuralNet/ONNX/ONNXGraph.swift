import TensorRuntime

/// An ONNX model being built: nodes in execution order, Float32 and Int64 initializers, one input
/// and one output whose first axis is the symbolic `batch`. `encode` writes the `ModelProto`.
///
/// Field numbers are those of onnx/onnx.proto (IR version 8, opset 17): ModelProto { ir_version
/// 1, producer_name 2, producer_version 3, graph 7, opset_import 8 }, GraphProto { node 1, name 2,
/// initializer 5, input 11, output 12 }, NodeProto { input 1, output 2, name 3, op_type 4,
/// attribute 5 }, AttributeProto { name 1, f 2, i 3, s 4, ints 8, type 20 }, TensorProto { dims 1,
/// data_type 2, int64_data 7, name 8, raw_data 9 }, ValueInfoProto { name 1, type 2 },
/// TypeProto { tensor_type 1 { elem_type 1, shape 2 { dim 1 { dim_value 1, dim_param 2 } } } }.
public final class ONNXGraph {
    public enum Attribute: Equatable, Sendable {
        case int(String, Int)
        case float(String, Float)
        case ints(String, [Int])
        case string(String, String)
    }

    public struct Node: Equatable, Sendable {
        public var op: String
        public var inputs: [String]
        public var outputs: [String]
        public var name: String
        public var attributes: [Attribute]
    }

    public static let irVersion = 8
    public static let opset = 17
    /// TensorProto.DataType values.
    static let float32 = 1, int64 = 7

    /// The element type of a graph input or output.
    public enum ElementType: Int, Sendable {
        case float32 = 1
        case int64 = 7
    }

    /// The graph input holding each row's class index (int64 [batch]) that class-conditional
    /// layers read, as `ClassLabels` holds the labels of a forward pass; nil for a graph without one.
    public var classLabels: String?

    /// Truncation psi applied inside a generator with an intermediate latent space (StyleGAN2's
    /// w: `w_avg + psi (w - w_avg)`); 1 for none. Other generators' latents are scaled at the input.
    public var truncation: Float = 1

    public private(set) var nodes: [Node] = []
    private(set) var floatInitializers: [(name: String, shape: [Int], values: [Float])] = []
    private(set) var intInitializers: [(name: String, values: [Int])] = []
    private var counter = 0

    public init() {}

    /// A name not used before, from `base`.
    func fresh(_ base: String) -> String {
        counter += 1
        return "\(base)_\(counter)"
    }

    /// A Float32 initializer holding `tensor`'s values.
    public func constant(_ tensor: Tensor, name: String) -> String {
        let n = fresh(name)
        floatInitializers.append((n, tensor.shape, tensor.scalars))
        return n
    }

    /// A 1-D Int64 initializer (shapes for `Reshape`).
    public func integers(_ values: [Int], name: String) -> String {
        let n = fresh(name)
        intInitializers.append((n, values))
        return n
    }

    /// Appends a node and returns its (single) output's name.
    @discardableResult
    public func node(_ op: String, _ inputs: [String], _ attributes: [Attribute] = [], output name: String? = nil) -> String {
        let output = name ?? fresh(op.lowercased())
        nodes.append(Node(op: op, inputs: inputs, outputs: [output], name: output, attributes: attributes))
        return output
    }

    /// The serialised `ModelProto`: each input `[batch] + shape` of its element type, output
    /// `output` `[batch] + shape` (Float32).
    public func encode(inputs: [(name: String, shape: [Int], type: ElementType)], output: (name: String, shape: [Int]), graphName: String,
                       producerVersion: String = "1") -> [UInt8] {
        var model = ProtobufWriter()
        model.int(1, Self.irVersion)
        model.string(2, "ganflow")
        model.string(3, producerVersion)
        model.message(7) { graph in
            for node in nodes {
                graph.message(1) { n in
                    for i in node.inputs { n.string(1, i) }
                    for o in node.outputs { n.string(2, o) }
                    n.string(3, node.name)
                    n.string(4, node.op)
                    for a in node.attributes { n.message(5) { Self.encode(a, into: &$0) } }
                }
            }
            graph.string(2, graphName)
            for t in floatInitializers {
                graph.message(5) { p in
                    for d in t.shape { p.int(1, d) }
                    p.int(2, Self.float32)
                    p.string(8, t.name)
                    var raw = [UInt8]()
                    raw.reserveCapacity(t.values.count * 4)
                    for v in t.values { withUnsafeBytes(of: v.bitPattern.littleEndian) { raw += $0 } }
                    p.data(9, raw)
                }
            }
            for t in intInitializers {
                graph.message(5) { p in
                    p.int(1, t.values.count)
                    p.int(2, Self.int64)
                    p.string(8, t.name)
                    p.packedInts(7, t.values)
                }
            }
            for input in inputs { graph.message(11) { Self.valueInfo(input.name, input.shape, type: input.type, into: &$0) } }
            graph.message(12) { Self.valueInfo(output.name, output.shape, type: .float32, into: &$0) }
        }
        model.message(8) { opset in
            opset.string(1, "")
            opset.int(2, Self.opset)
        }
        return model.bytes
    }

    static func encode(_ attribute: Attribute, into a: inout ProtobufWriter) {
        // AttributeProto.AttributeType: FLOAT 1, INT 2, STRING 3, INTS 7.
        switch attribute {
        case .float(let name, let v):
            a.string(1, name)
            a.float(2, v)
            a.int(20, 1)
        case .int(let name, let v):
            a.string(1, name)
            a.int(3, v)
            a.int(20, 2)
        case .string(let name, let v):
            a.string(1, name)
            a.string(4, v)
            a.int(20, 3)
        case .ints(let name, let vs):
            a.string(1, name)
            for v in vs { a.int(8, v) }
            a.int(20, 7)
        }
    }

    static func valueInfo(_ name: String, _ shape: [Int], type elementType: ElementType, into v: inout ProtobufWriter) {
        v.string(1, name)
        v.message(2) { type in
            type.message(1) { tensor in
                tensor.int(1, elementType.rawValue)
                tensor.message(2) { s in
                    s.message(1) { $0.string(2, "batch") }
                    for d in shape { s.message(1) { $0.int(1, d) } }
                }
            }
        }
    }
}

/// A layer that can write itself into an ONNX graph as the same computation its sample-mode
/// forward does (batch norm with the batch's statistics, spectral norm with its stored vectors).
public protocol ONNXExportable {
    /// Appends this layer's nodes reading `input` (of shape `shape`, batch first) and returns the
    /// name of its output.
    func emitONNX(_ graph: ONNXGraph, input: String, shape: [Int]) throws -> String
}

/// A layer without an ONNX translation.
public struct ONNXExportError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension ONNXGraph {
    /// The rows of `table` [classes, width] picked by each row's class (`classLabels`): the
    /// one-hot product with which the conditional layers read a class, as a Gather.
    func classRows(_ table: Tensor, name: String, layer: String) throws -> String {
        guard let labels = classLabels else {
            throw ONNXExportError("\(layer) is conditioned on classes, but the graph has no class labels input")
        }
        return node("Gather", [constant(table, name: name), labels], [.int("axis", 0)])
    }

    /// Emits `layer` (which must be `ONNXExportable`) and returns its output.
    public func emit(_ layer: any Layer, input: String, shape: [Int]) throws -> String {
        guard let exportable = layer as? any ONNXExportable else {
            throw ONNXExportError("no ONNX translation for layer \(type(of: layer))")
        }
        return try exportable.emitONNX(self, input: input, shape: shape)
    }
}
