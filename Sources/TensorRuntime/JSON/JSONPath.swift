/// A location inside a JSON document, rendered as `$.stages.D.inputs.real` or `$.schedule[1].run`.
public struct JSONPath: Hashable, Sendable, CustomStringConvertible, Comparable {
    public enum Component: Hashable, Sendable {
        case key(String)
        case index(Int)
    }

    public var components: [Component]

    public init(_ components: [Component] = []) { self.components = components }

    public static let root = JSONPath()

    public func appending(_ key: String) -> JSONPath { JSONPath(components + [.key(key)]) }
    public func appending(_ index: Int) -> JSONPath { JSONPath(components + [.index(index)]) }

    public static func / (path: JSONPath, key: String) -> JSONPath { path.appending(key) }
    public static func / (path: JSONPath, index: Int) -> JSONPath { path.appending(index) }

    public var description: String {
        var s = "$"
        for c in components {
            switch c {
            case .key(let k):
                if k.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) && !k.isEmpty {
                    s += "." + k
                } else {
                    s += "[" + JSONValue.quote(k) + "]"
                }
            case .index(let i): s += "[\(i)]"
            }
        }
        return s
    }

    public static func < (a: JSONPath, b: JSONPath) -> Bool { a.description < b.description }
}
