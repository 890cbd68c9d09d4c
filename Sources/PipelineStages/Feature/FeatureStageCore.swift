import Foundation
import NeuralNet
import PipelineGraph
import TensorRuntime

/// What `features.vgg` and `features.random` share: one fixed network applied to several inputs,
/// with outputs per input and per group of layers.
///
/// Ports: each name of `inputs` is an input port; for input `<input>` and layer group `<group>`
/// the output `<input>_<group>` is a pyramid holding that group's activations, in the order the
/// group lists them (`image_style`, `style_style`, `image_content`, `content_content`). Asking
/// for one output runs the network on that input only, as deep as its deepest requested layer.
///
/// Inputs that do not require gradients (a loaded content or style image) are cached: while
/// their values are unchanged, their activations are not computed again.
final class FeatureStageCore: @unchecked Sendable {
    static let defaultLayers: JSONValue = .object([
        ("content", .array([.string("block4_conv2")])),
        ("style", .array(["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"].map(JSONValue.string))),
    ])

    static let wiringKeys: [ConfigKey] = [
        ConfigKey("inputs", .wireMap, "Images [N, 3, H, W] in [0, 1] by name; output '<name>_<group>' for each layer group."),
        ConfigKey("layers", .any, default: defaultLayers, "Layer groups: {\"<group>\": [\"block4_conv2\", \"features.21\", ...]}; each gives one pyramid output per input."),
        ConfigKey("architecture", .string(choices: VGGFeatures.Architecture.allCases.map(\.rawValue)), default: .string("vgg19"), "VGG16 or VGG19 layout."),
    ]

    let network: VGGFeatures
    let inputNames: [String]
    let groups: [(name: String, positions: [Int])]
    /// Output port -> (input port, group index).
    let ports: [String: (input: String, group: Int)]
    private let cache = NSLock()
    private var cached: [String: (values: [Float], shape: [Int], activations: [Int: Tensor])] = [:]

    init(network: VGGFeatures, config: StageConfig) throws {
        self.network = network
        inputNames = config.raw("inputs").objectEntries?.map(\.0) ?? []
        guard let entries = config.raw("layers").objectEntries, !entries.isEmpty else {
            throw StageProblem(key: "layers", "expected an object of layer lists such as {\"style\": [\"block1_conv1\"]}, found \(config.raw("layers").serialized(indent: nil))")
        }
        var groups: [(String, [Int])] = []
        for (name, list) in entries {
            guard case .array(let items) = list, !items.isEmpty else {
                throw StageProblem(key: "layers", "group '\(name)': expected a non-empty list of layer names, found \(list.serialized(indent: nil))")
            }
            var positions: [Int] = []
            for item in items {
                guard case .string(let layer) = item else {
                    throw StageProblem(key: "layers", "group '\(name)': expected layer names, found \(item.serialized(indent: nil))")
                }
                guard let p = network.position(of: layer) else {
                    throw StageProblem(key: "layers", "group '\(name)': \(network.architecture.rawValue) has no layer '\(layer)'; layers are blockK_convJ, blockK_pool or features.N",
                                       suggestion: didYouMean(layer, among: network.layerNames))
                }
                positions.append(p)
            }
            groups.append((name, positions))
        }
        self.groups = groups
        var ports: [String: (String, Int)] = [:]
        for input in inputNames {
            for (g, group) in groups.enumerated() {
                let port = "\(input)_\(group.0)"
                if let other = ports[port] {
                    throw StageProblem(key: "layers", "output '\(port)' would stand for input '\(input)' with group '\(group.0)' and for input '\(other.0)' with group '\(groups[other.1].0)'; rename one")
                }
                ports[port] = (input, g)
            }
        }
        self.ports = ports
    }

    func outputTypes(_ inputs: [String: PortType]) throws -> [String: PortType] {
        var out: [String: PortType] = [:]
        for (port, (input, g)) in ports {
            guard let shape = inputs[input]?.shape, shape.count == 4, shape[1] == 3 else {
                throw StageProblem(key: input, "expected RGB images [N, 3, H, W], found \(inputs[input].map { "\($0)" } ?? "nothing")")
            }
            do {
                out[port] = .pyramid(try groups[g].positions.map { try network.outputShape(for: shape, at: $0) })
            } catch let e as TensorError {
                throw StageProblem(key: input, e.message)
            }
        }
        return out
    }

    func inputsNeeded(for output: String) -> [String]? { ports[output].map { [$0.input] } }

    func evaluate(_ e: Evaluation) throws -> [String: PortValue] {
        var wanted: [String: Set<Int>] = [:]
        for output in e.outputs {
            guard let (input, g) = ports[output] else { continue }
            wanted[input, default: []].formUnion(groups[g].positions)
        }
        var activations: [String: [Int: Tensor]] = [:]
        for input in inputNames {
            guard let positions = wanted[input] else { continue }
            activations[input] = try run(input, try e.tensor(input), positions)
        }
        var out: [String: PortValue] = [:]
        for output in e.outputs {
            guard let (input, g) = ports[output] else { continue }
            out[output] = .pyramid(groups[g].positions.map { activations[input]![$0]! })
        }
        return out
    }

    /// The activations of `x` at `positions`, from the cache when `x` is a constant seen before.
    private func run(_ input: String, _ x: Tensor, _ positions: Set<Int>) throws -> [Int: Tensor] {
        guard !x.requiresGrad else { return try network.forward(x, positions: positions) }
        let values = x.scalars
        if let hit = cache.withLock({ cached[input] }), hit.shape == x.shape, hit.values == values,
           positions.isSubset(of: Set(hit.activations.keys)) {
            return hit.activations
        }
        let activations = try network.forward(x, positions: positions)
        cache.withLock { cached[input] = (values, x.shape, activations) }
        return activations
    }
}
