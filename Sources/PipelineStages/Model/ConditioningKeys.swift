import NeuralNet
import PipelineGraph
import TensorRuntime

/// A stage that serves class labels [N] and knows how many classes they range over: a
/// `noise.classes` stage, or a dataset stage with labels. Conditional models check their
/// `classes` against it when the graph is built.
public protocol ClassLabelSource: Stage {
    /// The number of classes of the labels (nil: unknown).
    var classCount: Int? { get }
}

/// A model stage's class conditioning: the method, the classes and, for each image or latent
/// input port, the port of its labels.
struct LabelWiring: Sendable {
    let conditioning: ClassConditioning
    /// Input port -> its labels' port.
    let labelPorts: [String: String]
}

extension ModelKeys {
    /// The keys of a conditional generator (`labels` is one wire) or discriminator (`labels` is
    /// a map of wires, one per input).
    /// `only` and `doc` narrow the methods a model offers (StyleGAN2's).
    static func conditioning(generator: Bool, only: [ClassConditioning.Method]? = nil, doc onlyDoc: String? = nil) -> [ConfigKey] {
        let methods = (only ?? (generator ? ClassConditioning.generatorMethods : ClassConditioning.discriminatorMethods)).map(\.rawValue)
        let doc = onlyDoc ?? (generator
            ? "Class conditioning: none, concat (a class embedding joined to z) or cbn (per-class batch-norm gain and bias)."
            : "Class conditioning: none, concat (one-hot class channels joined to the image), projection (Miyato and Koyama 2018), ac (an auxiliary classifier: outputs '<input>Classes' [N, classes]) or projection+ac (both: the projection logit and the class logits).")
        return [
            ConfigKey("conditioning", .string(choices: ["none"] + methods), default: .string("none"), doc),
            ConfigKey("classes", .int(min: 2, max: 1 << 16), default: .null, "Number of classes of a conditional model; must match its label sources."),
            generator
                ? ConfigKey("labels", .wire, default: .null, "Class labels [N] of the latents (a noise.classes stage's 'labels').")
                : ConfigKey.prefixedWireMap("labels", default: .null, "Class labels [N] of each input by input name, e.g. {\"real\": \"data.labels\", \"fake\": \"y.labels\"}."),
        ]
    }

    /// The stage's conditioning, checked against its wiring: classes given, one label wire per
    /// input with one label per image, and label sources of the same number of classes.
    static func labelWiring(_ config: StageConfig, _ inputs: [String: PortType], ports: [(input: String, output: String)],
                            context: BuildContext, generator: Bool) throws -> LabelWiring? {
        let method = config.string("conditioning")
        guard method != "none" else {
            if !config.isNull("labels") {
                throw StageProblem(key: "labels", "labels are wired but 'conditioning' is none; set conditioning to one of \((generator ? ClassConditioning.generatorMethods : ClassConditioning.discriminatorMethods).map(\.rawValue).joined(separator: ", "))")
            }
            return nil
        }
        guard let classes = config.optionalInt("classes") else {
            throw StageProblem(key: "classes", "conditioning '\(method)' needs the number of classes")
        }
        guard !config.isNull("labels") else {
            throw StageProblem(key: "labels", generator
                ? "conditioning '\(method)' needs class labels: wire 'labels' to a noise.classes stage's 'labels'"
                : "conditioning '\(method)' needs class labels for each input: {\(ports.map { "\"\($0.input)\": ..." }.joined(separator: ", "))}")
        }
        // Input port -> (label port, the wire's text).
        var wires: [String: (port: String, wire: String)] = [:]
        if generator {
            guard ports.count == 1 else {
                throw StageProblem(key: "inputs", "a conditional generator takes one latent 'input', found \(ports.count) inputs")
            }
            wires[ports[0].input] = ("labels", config.string("labels"))
        } else {
            let key = ConfigKey.prefixedWireMap("labels", "")
            let entries = config.raw("labels").objectEntries ?? []
            for (name, value) in entries {
                guard ports.contains(where: { $0.input == name }) else {
                    throw StageProblem(key: key.port(name), "no input '\(name)' to label", suggestion: didYouMean(name, among: ports.map(\.input)))
                }
                if case .string(let s) = value { wires[name] = (key.port(name), s) }
            }
            for (input, _) in ports where wires[input] == nil {
                throw StageProblem(key: "labels", "input '\(input)' has no class labels; add \"\(input)\": \"<stage>.labels\" to 'labels'")
            }
        }
        for (input, _) in ports {
            guard let (port, wire) = wires[input] else { continue }
            let batch = inputs[input]?.shape?.first
            guard let labels = inputs[port]?.shape, labels.count == 1, batch == nil || labels[0] == batch else {
                throw StageProblem(key: port, "expected class labels [\(batch.map(String.init) ?? "N")] for input '\(input)', found \(inputs[port].map { "\($0)" } ?? "nothing")")
            }
            if let source = Wire(parsing: wire).flatMap({ context.stage($0.stage) }) as? any ClassLabelSource, let k = source.classCount, k != classes {
                throw StageProblem(key: port, "'\(wire)' gives labels of \(k) classes, but 'classes' is \(classes)")
            }
        }
        return LabelWiring(conditioning: ClassConditioning(ClassConditioning.Method(rawValue: method)!, classes: classes),
                           labelPorts: wires.mapValues(\.port))
    }
}

extension ModelKeys {
    /// `cbn` conditions batch norms: a generator without them cannot take it.
    static func checkConditioning(_ labels: LabelWiring?, norm: Normalization) throws {
        if let c = labels?.conditioning, c.method == .cbn, norm != .batch {
            throw StageProblem(key: "conditioning", "conditioning 'cbn' conditions the batch norms: it needs norm 'batch', found '\(norm.rawValue)'")
        }
    }
}
