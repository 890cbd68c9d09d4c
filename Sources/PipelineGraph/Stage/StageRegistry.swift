/// The stage types a pipeline may name, registered explicitly (no import side effects).
public struct StageRegistry: Sendable {
    public private(set) var types: [String: any Stage.Type] = [:]

    public init(_ types: [any Stage.Type] = []) {
        for t in types { register(t) }
    }

    /// Adds a type; registering the same name twice is a programming error.
    public mutating func register(_ type: any Stage.Type) {
        precondition(types[type.typeName] == nil, "stage type '\(type.typeName)' registered twice")
        precondition(type.typeName.contains("."), "stage type '\(type.typeName)' must be dotted (family.name)")
        types[type.typeName] = type
    }

    public subscript(name: String) -> (any Stage.Type)? { types[name] }

    public var sortedNames: [String] { types.keys.sorted() }

    /// Every key a stage of this type accepts: its own and the common ones.
    public static func allKeys(of type: any Stage.Type) -> [ConfigKey] {
        type.configKeys + CommonKeys.all
    }
}
