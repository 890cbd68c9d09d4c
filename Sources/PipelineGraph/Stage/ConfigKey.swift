/// The type and range of one configuration value.
public enum ConfigType: Sendable, Equatable {
    case int(min: Int? = nil, max: Int? = nil)
    case number(min: Double? = nil, max: Double? = nil)
    case bool
    case string(choices: [String]? = nil)
    /// A file or directory path.
    case path
    case intList(count: Int? = nil)
    case numberList(count: Int? = nil)
    /// A wire from another stage's output port: `"stageId.port"`. Becomes an input port named after the key.
    case wire
    /// Named wires: `{"real": "data.images", "fake": "G.images"}`. Each name becomes an input port.
    case wireMap
    /// The id of another stage, e.g. the model whose parameters an optimizer updates.
    case stageRef
    /// Any JSON (a stage that interprets it itself, such as a nested policy).
    case any

    var jsonSchema: JSONValue {
        switch self {
        case let .int(lo, hi):
            var e: [(String, JSONValue)] = [("type", .string("integer"))]
            if let lo { e.append(("minimum", .number(Double(lo)))) }
            if let hi { e.append(("maximum", .number(Double(hi)))) }
            return .object(e)
        case let .number(lo, hi):
            var e: [(String, JSONValue)] = [("type", .string("number"))]
            if let lo { e.append(("minimum", .number(lo))) }
            if let hi { e.append(("maximum", .number(hi))) }
            return .object(e)
        case .bool: return .object([("type", .string("boolean"))])
        case .string(let choices):
            if let choices { return .object([("enum", .array(choices.map(JSONValue.string)))]) }
            return .object([("type", .string("string"))])
        case .path: return .object([("type", .string("string"))])
        case .intList(let n), .numberList(let n):
            let item: JSONValue = .object([("type", .string(self == .intList(count: n) ? "integer" : "number"))])
            var e: [(String, JSONValue)] = [("type", .string("array")), ("items", item)]
            if let n { e += [("minItems", .number(Double(n))), ("maxItems", .number(Double(n)))] }
            return .object(e)
        case .wire, .stageRef:
            return .object([("type", .string("string")), ("pattern", .string(self == .wire ? "^[^.]+\\.[^.]+$" : "^[^.]+$"))])
        case .wireMap:
            return .object([("type", .string("object")), ("additionalProperties", .object([("type", .string("string"))]))])
        case .any: return .object([])
        }
    }

    var summary: String {
        switch self {
        case let .int(lo, hi): return "int" + Self.range(lo.map(Double.init), hi.map(Double.init))
        case let .number(lo, hi): return "number" + Self.range(lo, hi)
        case .bool: return "bool"
        case .string(let c): return c.map { $0.joined(separator: "|") } ?? "string"
        case .path: return "path"
        case .intList(let n): return "[int]" + (n.map { "x\($0)" } ?? "")
        case .numberList(let n): return "[number]" + (n.map { "x\($0)" } ?? "")
        case .wire: return "wire"
        case .wireMap: return "{name: wire}"
        case .stageRef: return "stage id"
        case .any: return "json"
        }
    }

    private static func range(_ lo: Double?, _ hi: Double?) -> String {
        func f(_ x: Double) -> String { x.rounded() == x ? String(Int(x)) : String(x) }
        switch (lo, hi) {
        case (nil, nil): return ""
        case let (l?, nil): return " >= \(f(l))"
        case let (nil, h?): return " <= \(f(h))"
        case let (l?, h?): return " in \(f(l))...\(f(h))"
        }
    }
}

/// One configuration key of a stage type: its type, default and one-line documentation.
///
/// The registry's schema is built from these, so `ganflow stages`, `ganflow schema` and the
/// validator all read the same declaration.
public struct ConfigKey: Sendable {
    public var name: String
    public var type: ConfigType
    /// nil when the key is required.
    public var defaultValue: JSONValue?
    public var doc: String

    public init(_ name: String, _ type: ConfigType, default defaultValue: JSONValue? = nil, _ doc: String) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.doc = doc
    }

    public var isRequired: Bool { defaultValue == nil }
}

/// Keys every stage accepts; the scheduler, not the stage, interprets them.
public enum CommonKeys {
    public static let all: [ConfigKey] = [
        ConfigKey("every", .int(min: 1), default: .number(1), "Run only on steps divisible by this (sinks, metrics)."),
        ConfigKey("from", .int(min: 0), default: .number(0), "First step on which the stage runs."),
        ConfigKey("until", .int(min: 0), default: .null, "Last step on which the stage runs (null: no limit)."),
    ]
}
