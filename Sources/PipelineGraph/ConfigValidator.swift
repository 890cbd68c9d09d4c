/// Checks one stage's raw JSON against its type's declared keys, collecting every problem.
struct ConfigValidator {
    let file: String
    let locations: [JSONPath: SourceLocation]

    func error(_ code: String, _ path: JSONPath, _ message: String, suggestion: String? = nil) -> PipelineError {
        PipelineError(code, file: file, path: path, location: locations[path], message, suggestion: suggestion)
    }

    /// Returns the validated values (defaults filled in) or the problems found.
    func validate(id: String, raw: JSONValue, type: any Stage.Type, path: JSONPath) -> ([String: JSONValue], [PipelineError]) {
        var problems: [PipelineError] = []
        var values: [String: JSONValue] = [:]
        let keys = StageRegistry.allKeys(of: type)
        let entries = raw.objectEntries ?? []
        for (k, _) in entries where k != "type" && !keys.contains(where: { $0.name == k }) {
            problems.append(error("key.unknown", path / k, "unknown key '\(k)' for \(type.typeName)",
                                  suggestion: didYouMean(k, among: keys.map(\.name))))
        }
        for key in keys {
            let p = path / key.name
            guard let v = raw[key.name] else {
                if let d = key.defaultValue {
                    values[key.name] = d
                } else {
                    problems.append(error("key.missing", path, "missing key '\(key.name)' (\(key.doc))"))
                }
                continue
            }
            if v == .null, key.defaultValue == .null {
                values[key.name] = v
                continue
            }
            if let message = check(v, against: key.type) {
                problems.append(error("key.type", p, message))
            } else {
                values[key.name] = v
            }
        }
        return (values, problems)
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
        case .any:
            break
        }
        return nil
    }

    func fmt(_ x: Double) -> String { x.rounded() == x && abs(x) < 1e15 ? String(Int64(x)) : String(x) }
}
