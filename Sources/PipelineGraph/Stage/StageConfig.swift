/// A stage's configuration after validation: every declared key has a value of its declared type.
///
/// Accessors do not fail: asking for an undeclared key or the wrong type is a programming error
/// in the stage, caught by its tests.
public struct StageConfig: Sendable {
    public let stageID: String
    public let typeName: String
    /// The JSON path of this stage (`$.stages.<id>`), for errors a stage raises itself.
    public let path: JSONPath
    let values: [String: JSONValue]

    public init(stageID: String, typeName: String, path: JSONPath, values: [String: JSONValue]) {
        self.stageID = stageID
        self.typeName = typeName
        self.path = path
        self.values = values
    }

    public func raw(_ key: String) -> JSONValue {
        guard let v = values[key] else { preconditionFailure("stage \(typeName) reads undeclared key '\(key)'") }
        return v
    }

    public func isNull(_ key: String) -> Bool { raw(key) == .null }

    public func int(_ key: String) -> Int {
        guard case .number(let n) = raw(key) else { preconditionFailure("\(key) is not a number") }
        return Int(n)
    }

    public func optionalInt(_ key: String) -> Int? { isNull(key) ? nil : int(key) }

    public func double(_ key: String) -> Double {
        guard case .number(let n) = raw(key) else { preconditionFailure("\(key) is not a number") }
        return n
    }

    public func float(_ key: String) -> Float { Float(double(key)) }

    public func optionalDouble(_ key: String) -> Double? { isNull(key) ? nil : double(key) }

    public func bool(_ key: String) -> Bool {
        guard case .bool(let b) = raw(key) else { preconditionFailure("\(key) is not a bool") }
        return b
    }

    public func string(_ key: String) -> String {
        guard case .string(let s) = raw(key) else { preconditionFailure("\(key) is not a string") }
        return s
    }

    public func optionalString(_ key: String) -> String? { isNull(key) ? nil : string(key) }

    public func ints(_ key: String) -> [Int] { doubles(key).map { Int($0) } }

    public func doubles(_ key: String) -> [Double] {
        guard case .array(let items) = raw(key) else { preconditionFailure("\(key) is not a list") }
        return items.map { if case .number(let n) = $0 { return n }; preconditionFailure("\(key) item is not a number") }
    }

    /// The path of `key` in the document, for a stage's own error messages.
    public func path(_ key: String) -> JSONPath { path / key }
}

/// A problem a stage finds while being built or checking shapes, at one of its keys.
///
/// The builder turns it into a `PipelineError` at `$.stages.<id>.<key>`.
public struct StageProblem: Error, Sendable {
    public var key: String?
    public var message: String
    public var suggestion: String?

    public init(key: String? = nil, _ message: String, suggestion: String? = nil) {
        self.key = key
        self.message = message
        self.suggestion = suggestion
    }
}
