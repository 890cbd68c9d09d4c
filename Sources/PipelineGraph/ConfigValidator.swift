/// Checks raw JSON against declared keys (a stage type's, or a pipeline's top level), collecting
/// every problem.
struct ConfigValidator {
    let file: String
    let locations: [JSONPath: SourceLocation]

    func error(_ code: String, _ path: JSONPath, _ message: String, suggestion: String? = nil) -> PipelineError {
        PipelineError(code, file: file, path: path, location: locations[path], message, suggestion: suggestion)
    }

    /// Returns a stage's validated values (defaults filled in) or the problems found. Its `type`
    /// is not a configuration key: the builder has read it.
    func validate(id: String, raw: JSONValue, type: any Stage.Type, path: JSONPath) -> ([String: JSONValue], [PipelineError]) {
        let keys = StageRegistry.allKeys(of: type)
        var problems = unknownKeys(in: raw, declared: keys, path: path, owner: " for \(type.typeName)", allowing: ["type"])
        var values: [String: JSONValue] = [:]
        for key in keys {
            let (v, found) = value(of: key, in: raw, at: path)
            problems += found
            if let v { values[key.name] = v }
        }
        return (values, problems)
    }

    /// One problem per key of the object `raw` (at `path`) that `keys` does not declare.
    func unknownKeys(in raw: JSONValue, declared keys: [ConfigKey], path: JSONPath, owner: String = "",
                     allowing allowed: [String] = []) -> [PipelineError] {
        (raw.objectEntries ?? []).compactMap { (k, _) in
            guard !allowed.contains(k), !keys.contains(where: { $0.name == k }) else { return nil }
            return error("key.unknown", path / k, "unknown key '\(k)'\(owner)",
                         suggestion: didYouMean(k, among: keys.map(\.name)) ?? knownAs(k, among: keys))
        }
    }

    /// "did you mean 'width' (ngf)?" for the one key whose description gives `word` as the name
    /// other code knows it by, in parentheses ("Feature maps of the last block (ngf, null: 64)").
    func knownAs(_ word: String, among keys: [ConfigKey]) -> String? {
        let named = keys.filter { $0.doc.contains("(\(word),") || $0.doc.contains("(\(word))") }
        guard named.count == 1 else { return nil }
        return "did you mean '\(named[0].name)' (\(word))?"
    }

    /// The value of `key` in the object `raw` at `path`: as given, or its default (nested objects
    /// with their defaults filled in); nil with the problems found, or nil for an optional key left out.
    func value(of key: ConfigKey, in raw: JSONValue, at path: JSONPath) -> (JSONValue?, [PipelineError]) {
        guard let v = raw[key.name] else {
            if let d = key.defaultValue {
                if case .object = key.type { return check(d, as: key, at: path / key.name) }
                return (d, [])
            }
            guard key.isRequired else { return (nil, []) }
            return (nil, [error("key.missing", path, "missing key '\(key.name)'" + (key.missingHint.map { " (\($0))" } ?? ""))])
        }
        return check(v, as: key, at: path / key.name)
    }

    /// `v` checked against `key`: its type, its non-emptiness, and the keys, ids or items inside.
    func check(_ v: JSONValue, as key: ConfigKey, at path: JSONPath) -> (JSONValue?, [PipelineError]) {
        if v == .null, key.defaultValue == .null { return (v, []) }
        if let message = check(v, against: key.type) {
            let wording = key.expected.map { "expected \($0), found \(shown(v, expecting: key.type))" } ?? message
            return (nil, [error("key.type", path, wording)])
        }
        if let ifEmpty = key.ifEmpty, isEmpty(v) {
            let code = if case .string = v { "key.type" } else { "\(key.name).empty" }
            return (nil, [error(code, path, ifEmpty)])
        }
        switch (key.type, v) {
        case (.object(let keys), _):
            var problems = unknownKeys(in: v, declared: keys, path: path)
            var entries: [(String, JSONValue)] = []
            for k in keys {
                let (x, found) = value(of: k, in: v, at: path)
                problems += found
                if let x { entries.append((k.name, x)) }
            }
            return (problems.isEmpty ? .object(entries) : nil, inTextOrder(problems, of: v, at: path))
        case (.map(let item), .object(let entries)):
            var problems: [PipelineError] = []
            var checked: [(String, JSONValue)] = []
            for (id, x) in entries {
                if !ConfigKey.isID(id) {
                    problems.append(error("\(item.name).id", path / id, "\(item.name) id '\(id)' must be non-empty, without '.' or spaces"))
                }
                let (y, found) = check(x, as: item, at: path / id)
                problems += found
                if let y { checked.append((id, y)) }
            }
            return (problems.isEmpty ? .object(checked) : nil, problems)
        case (.list(let item), .array(let items)):
            var problems: [PipelineError] = []
            var checked: [JSONValue] = []
            for (i, x) in items.enumerated() {
                let (y, found) = check(x, as: item, at: path / i)
                problems += found
                if let y { checked.append(y) }
            }
            return (problems.isEmpty ? .array(checked) : nil, problems)
        default:
            return (v, [])
        }
    }

    /// Inside a section (`checkpoint`, a phase), problems come in the order of the keys in the
    /// text, a missing key's last.
    func inTextOrder(_ problems: [PipelineError], of object: JSONValue, at path: JSONPath) -> [PipelineError] {
        let position = Dictionary((object.objectEntries ?? []).enumerated().map { ($1.0, $0) }, uniquingKeysWith: min)
        func rank(_ p: PipelineError) -> Int {
            guard p.path.components.count > path.components.count,
                  case .key(let k) = p.path.components[path.components.count] else { return Int.max }
            return position[k] ?? Int.max
        }
        return problems.enumerated().sorted { (rank($0.1), $0.0) < (rank($1.1), $1.0) }.map(\.1)
    }

    func isEmpty(_ v: JSONValue) -> Bool {
        switch v {
        case .string(let s): return s.isEmpty
        case .array(let items): return items.isEmpty
        case .object(let entries): return entries.isEmpty
        default: return false
        }
    }

    /// How a mismatch shows the value found: numbers and booleans as written, anything else by
    /// its kind ("an object").
    func shown(_ v: JSONValue, expecting type: ConfigType) -> String {
        switch type {
        case .int, .number, .bool: return v.serialized(indent: nil)
        default: return v.typeName
        }
    }

    /// nil when `v` fits `type`, else a message.
    func check(_ v: JSONValue, against type: ConfigType) -> String? {
        func shown(_ v: JSONValue) -> String { v.serialized(indent: nil) }
        switch type {
        case let .int(lo, hi):
            guard case .number(let n) = v, n.rounded() == n, abs(n) < 1e15 else { return "expected an integer, found \(shown(v))" }
            if let lo, Int(n) < lo { return "must be >= \(lo), found \(Int(n))" }
            if let hi, Int(n) > hi { return "must be <= \(hi), found \(Int(n))" }
        case let .number(lo, hi):
            guard case .number(let n) = v else { return "expected a number, found \(shown(v))" }
            if let lo, n < lo { return "must be >= \(fmt(lo)), found \(fmt(n))" }
            if let hi, n > hi { return "must be <= \(fmt(hi)), found \(fmt(n))" }
        case .bool:
            guard case .bool = v else { return "expected true or false, found \(shown(v))" }
        case .string(let choices):
            guard case .string(let s) = v else { return "expected a string, found \(shown(v))" }
            if let choices, !choices.contains(s) {
                let hint = didYouMean(s, among: choices).map { " (\($0))" } ?? ""
                return "'\(s)' is not one of \(choices.joined(separator: ", "))\(hint)"
            }
        case .path:
            guard case .string(let s) = v, !s.isEmpty else { return "expected a path string, found \(shown(v))" }
        case .intList(let count), .numberList(let count):
            guard case .array(let items) = v else { return "expected a list, found \(shown(v))" }
            if let count, items.count != count { return "expected \(count) values, found \(items.count)" }
            for item in items {
                guard case .number(let n) = item else { return "expected numbers in the list, found \(shown(item))" }
                if case .intList = type, n.rounded() != n { return "expected integers in the list, found \(fmt(n))" }
            }
        case .wire:
            guard case .string(let s) = v, Wire(parsing: s) != nil else {
                return "expected a wire \"stage.port\", found \(shown(v))"
            }
        case .wireMap:
            guard let e = v.objectEntries, !e.isEmpty else { return "expected an object of named wires, found \(shown(v))" }
            for (name, w) in e {
                guard case .string(let s) = w, Wire(parsing: s) != nil else {
                    return "'\(name)': expected a wire \"stage.port\", found \(shown(w))"
                }
            }
        case .stageRef:
            guard case .string(let s) = v, !s.isEmpty, !s.contains(".") else { return "expected a stage id, found \(shown(v))" }
        case .any, .stage:
            break
        case .object, .map:
            guard v.objectEntries != nil else { return "expected an object, found \(shown(v))" }
        case .list:
            guard case .array = v else { return "expected a list, found \(shown(v))" }
        case .oneOf(let types):
            let fits = types.contains { t in check(v, as: ConfigKey("", t, ""), at: .root).1.isEmpty }
            if !fits { return "expected \(type.summary), found \(shown(v))" }
        }
        return nil
    }

    func fmt(_ x: Double) -> String { x.rounded() == x && abs(x) < 1e15 ? String(Int64(x)) : String(x) }
}
