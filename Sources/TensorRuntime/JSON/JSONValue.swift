/// A JSON value that keeps the order of object keys, so a resolved pipeline is written back the
/// way the user wrote it.
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// The value under `key` of an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let entries) = self { return entries.first { $0.0 == key }?.1 }
        return nil
    }

    public var objectEntries: [(String, JSONValue)]? {
        if case .object(let e) = self { return e }
        return nil
    }

    /// A short name of the value's JSON type, for messages: "an array", "a number".
    public var kind: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// `kind`, with integral numbers called "an integer", for messages about configuration values.
    public var typeName: String {
        if case .number(let n) = self, n.rounded() == n { return "an integer" }
        return kind
    }

    /// Sets `value` at `path` (object keys only), creating objects on the way.
    public mutating func set(_ value: JSONValue, at path: [String]) throws {
        guard let first = path.first else { self = value; return }
        guard case .object(var entries) = self else {
            throw JSONPathError(message: "is \(typeName), not an object")
        }
        if let i = entries.firstIndex(where: { $0.0 == first }) {
            try entries[i].1.set(value, at: Array(path.dropFirst()))
        } else {
            var fresh = JSONValue.object([])
            try fresh.set(value, at: Array(path.dropFirst()))
            entries.append((first, fresh))
        }
        self = .object(entries)
    }
}

/// Why `JSONValue.set(_:at:)` could not set a value.
public struct JSONPathError: Error, Sendable {
    public var message: String
}

extension JSONValue {
    /// Compact or indented JSON text.
    public func serialized(indent: Int? = 2) -> String {
        var out = ""
        write(into: &out, indent: indent, level: 0)
        return out
    }

    private func write(into out: inout String, indent: Int?, level: Int) {
        let pad = { (l: Int) -> String in indent.map { "\n" + String(repeating: " ", count: $0 * l) } ?? "" }
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n):
            if n.rounded() == n, abs(n) < 1e15 { out += String(Int64(n)) } else { out += "\(n)" }
        case .string(let s): out += JSONValue.quote(s)
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            let simple = items.allSatisfy { if case .array = $0 { return false }; if case .object = $0 { return false }; return true }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += simple ? ", " : "," }
                if !simple { out += pad(level + 1) }
                item.write(into: &out, indent: indent, level: level + 1)
            }
            if !simple { out += pad(level) }
            out += "]"
        case .object(let entries):
            if entries.isEmpty { out += "{}"; return }
            out += "{"
            for (i, (k, v)) in entries.enumerated() {
                if i > 0 { out += "," }
                out += pad(level + 1) + JSONValue.quote(k) + (indent == nil ? ":" : ": ")
                v.write(into: &out, indent: indent, level: level + 1)
            }
            out += pad(level) + "}"
        }
    }

    /// `s` as a JSON string literal.
    public static func quote(_ s: String) -> String {
        var r = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": r += "\\\""
            case "\\": r += "\\\\"
            case "\n": r += "\\n"
            case "\r": r += "\\r"
            case "\t": r += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                r += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: r.unicodeScalars.append(u)
            }
        }
        return r + "\""
    }
}
