/// The type and range of one configuration value.
public indirect enum ConfigType: Sendable, Equatable {
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
    /// An object with these keys and no others (the `checkpoint` section of a pipeline).
    case object([ConfigKey])
    /// An object from ids (non-empty, without '.' or spaces) to values declared by `item`, whose
    /// name says what an id names (the `stages` of a pipeline: `item` is "stage").
    case map(ConfigKey)
    /// An array of values declared by `item` (the `schedule`'s phases).
    case list(ConfigKey)
    /// A value of the first of these types it fits (a phase's `run`: one stage id or a list).
    case oneOf([ConfigType])
    /// A stage object: its `type` from the registry and that type's keys, checked by the builder.
    case stage

    /// The JSON Schema (draft 2020-12) of a value of this type; `stage` is the schema of a stage
    /// object, built from the registry.
    func jsonSchema(stage: JSONValue) -> JSONValue {
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
        case .object(let keys):
            var e: [(String, JSONValue)] = [
                ("type", .string("object")),
                ("properties", .object(keys.map { ($0.name, $0.jsonSchema(stage: stage)) })),
            ]
            let required = keys.filter(\.isRequired).map { JSONValue.string($0.name) }
            if !required.isEmpty { e.append(("required", .array(required))) }
            e.append(("additionalProperties", .bool(false)))
            return .object(e)
        case .map(let item):
            return .object([
                ("type", .string("object")),
                ("propertyNames", .object([("pattern", .string(ConfigKey.idPattern))])),
                ("additionalProperties", item.jsonSchema(stage: stage)),
            ])
        case .list(let item):
            return .object([("type", .string("array")), ("items", item.jsonSchema(stage: stage))])
        case .oneOf(let types):
            return .object([("anyOf", .array(types.map { $0.jsonSchema(stage: stage) }))])
        case .stage:
            return stage
        }
    }

    /// The keys of an object, or of the objects in a list or map.
    var nestedKeys: [ConfigKey] {
        switch self {
        case .object(let keys): return keys
        case .list(let item), .map(let item): return item.type.nestedKeys
        default: return []
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
        case .object: return "object"
        case .map(let item): return "{id: \(item.name)}"
        case .list(let item): return "[\(item.name)]"
        case .oneOf(let types): return types.map(\.summary).joined(separator: " or ")
        case .stage: return "stage"
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

/// One configuration key of a stage type or of a pipeline's top level: its type, default and
/// one-line documentation.
///
/// The registry's schema and the top level (`PipelineDocument.keys`) are built from these, so
/// `ganflow stages`, `ganflow schema`, the decoder and the validator all read the same declaration.
public struct ConfigKey: Sendable, Equatable {
    public var name: String
    public var type: ConfigType
    /// nil when the key is required or optional without a default.
    public var defaultValue: JSONValue?
    public var doc: String
    /// Whether a value must be given. A key with a default never is.
    public var isRequired: Bool
    /// What a type mismatch names as expected (`expected an integer >= 1, found 0`); nil: the
    /// type's own wording (`must be >= 1, found 0`).
    public var expected: String?
    /// What "missing key 'name'" adds in parentheses; nil: nothing.
    public var missingHint: String?
    /// When set, an empty string, array or object is rejected with this message.
    public var ifEmpty: String?
    /// For a `wireMap`: its input ports are named `<key>:<name>` rather than `<name>`, so that its
    /// names may repeat those of another map (a discriminator's `labels` of its `inputs`).
    public var prefixesPorts = false

    /// A stage's key: required unless it has a default; a missing key is explained by its doc.
    public init(_ name: String, _ type: ConfigType, default defaultValue: JSONValue? = nil, _ doc: String) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.doc = doc
        self.isRequired = defaultValue == nil
        self.missingHint = doc
    }

    /// A key with its own wording of problems (the pipeline's top level). `optional`: the key may
    /// be left out though it has no default.
    public init(_ name: String, _ type: ConfigType, default defaultValue: JSONValue? = nil, optional: Bool = false,
                expected: String, missingHint: String? = nil, ifEmpty: String? = nil, _ doc: String) {
        self.init(name, type, default: defaultValue, doc)
        self.isRequired = defaultValue == nil && !optional
        self.expected = expected
        self.missingHint = missingHint
        self.ifEmpty = ifEmpty
    }

    /// A `wireMap` key whose ports are named `<key>:<name>` (`prefixesPorts`).
    public static func prefixedWireMap(_ name: String, default defaultValue: JSONValue? = nil, _ doc: String) -> ConfigKey {
        var key = ConfigKey(name, .wireMap, default: defaultValue, doc)
        key.prefixesPorts = true
        return key
    }

    /// The input port of entry `name` of this `wireMap` key.
    public func port(_ name: String) -> String { prefixesPorts ? self.name + ":" + name : name }

    /// The ids of a `.map`: non-empty, without '.' or spaces (a stage id is the first part of a
    /// wire). The schema's pattern and the validator's test, side by side.
    static let idPattern = "^[^. ]+$"
    static func isID(_ s: String) -> Bool { !s.isEmpty && !s.contains(".") && !s.contains(" ") }

    /// The key's JSON Schema: its type's, with the doc, the default and non-emptiness.
    func jsonSchema(stage: JSONValue) -> JSONValue {
        var schema = type.jsonSchema(stage: stage).objectEntries ?? []
        if ifEmpty != nil {
            switch type {
            case .object, .map, .wireMap: schema.append(("minProperties", .number(1)))
            case .list, .intList, .numberList: schema.append(("minItems", .number(1)))
            default: schema.append(("minLength", .number(1)))
            }
        }
        schema.append(("description", .string(doc)))
        if let d = defaultValue, d != .null { schema.append(("default", d)) }
        return .object(schema)
    }
}

/// Keys every stage accepts; the scheduler, not the stage, interprets them.
public enum CommonKeys {
    public static let all: [ConfigKey] = [
        ConfigKey("every", .int(min: 1), default: .number(1), "Run only on steps divisible by this (sinks, metrics)."),
        ConfigKey("from", .int(min: 0), default: .number(0), "First step on which the stage runs."),
        ConfigKey("until", .int(min: 0), default: .null, "Last step on which the stage runs (null: no limit)."),
    ]
}
