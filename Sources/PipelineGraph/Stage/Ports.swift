import TensorRuntime

/// What flows along a wire, as known when the graph is built. Wires are checked against these
/// before the first step.
public enum PortType: Sendable, Equatable, CustomStringConvertible {
    /// A tensor of a known shape.
    case tensor([Int])
    /// One image batch per scale, coarsest first (MSG-GAN).
    case pyramid([[Int]])
    /// A single number (a loss, a learning rate, an accuracy).
    case scalar
    /// An integer that steers other stages (a resolution, a batch size).
    case integer
    /// A stage's action, which nothing consumes (an optimizer step, a sink write).
    case effect

    public var description: String {
        switch self {
        case .tensor(let s): return "tensor \(describe(s))"
        case .pyramid(let ss): return "pyramid " + ss.map(describe).joined(separator: " ")
        case .scalar: return "scalar"
        case .integer: return "integer"
        case .effect: return "effect"
        }
    }

    /// The shape of a tensor port, or nil.
    public var shape: [Int]? {
        if case .tensor(let s) = self { return s }
        return nil
    }

    /// The kind of value without its shape, for port-type checks.
    public var kind: String {
        switch self {
        case .tensor: return "tensor"
        case .pyramid: return "pyramid"
        case .scalar: return "scalar"
        case .integer: return "integer"
        case .effect: return "effect"
        }
    }
}

/// A value on a wire during a step.
public enum PortValue: @unchecked Sendable {
    case tensor(Tensor)
    case pyramid([Tensor])
    case scalar(Tensor)
    case integer(Int)
    case effect

    public var tensor: Tensor? {
        switch self {
        case .tensor(let t), .scalar(let t): return t
        default: return nil
        }
    }

    /// The value as a plain number, for logging (scalars and integers).
    public var number: Double? {
        switch self {
        case .scalar(let t): return Double(t.item())
        case .integer(let n): return Double(n)
        default: return nil
        }
    }
}

/// A reference to another stage's output: `"G.images"`.
public struct Wire: Hashable, Sendable, CustomStringConvertible {
    public var stage: String
    public var port: String

    public init(stage: String, port: String) {
        self.stage = stage
        self.port = port
    }

    /// Parses `"stage.port"`; nil when the text is not of that form.
    public init?(parsing text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        stage = String(parts[0])
        port = String(parts[1])
    }

    public var description: String { "\(stage).\(port)" }
}
