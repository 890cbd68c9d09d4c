/// `--set stageId.key=value`, `--set seed=3` and `--set distributed.syncBatchNorm=true` (a key of
/// a top-level section that no stage is named after): edits applied to the JSON before validation.
///
/// The value is read as JSON when it parses (numbers, booleans, lists, quoted strings) and as a
/// plain string otherwise, so `--set G.norm=spectral` and `--set optD.betas=[0,0.9]` both work.
public enum Overrides {
    /// Top-level objects whose keys `--set section.key=value` reaches.
    static let sections = PipelineDocument.keys.filter { if case .object = $0.type { true } else { false } }.map(\.name)

    public static func apply(_ assignments: [String], to json: inout JSONValue, file: String) throws {
        var problems: [PipelineError] = []
        // Errors name the file the assignment was applied to (`compare` applies one to several).
        let source = "--set on \(file)"
        for a in assignments {
            guard let eq = a.firstIndex(of: "=") else {
                problems.append(PipelineError("set.syntax", file: source, "'\(a)' is not of the form stage.key=value"))
                continue
            }
            let lhs = String(a[..<eq]), rhs = String(a[a.index(after: eq)...])
            let value = (try? JSONParser.parse(rhs).value) ?? .string(rhs)
            var parts = lhs.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            if parts.contains(where: \.isEmpty) {
                problems.append(PipelineError("set.syntax", file: source, "'\(lhs)' has an empty name"))
                continue
            }
            let section = parts.count >= 2 && sections.contains(parts[0]) && json["stages"]?[parts[0]] == nil
            if !section && (parts.count >= 2 || !PipelineDocument.topLevelKeys.contains(parts[0])) {
                if json["stages"]?[parts[0]] == nil {
                    let ids = json["stages"]?.objectEntries?.map(\.0) ?? []
                    problems.append(PipelineError("set.stage", file: source, path: .root / "stages" / parts[0],
                                                  "no stage '\(parts[0])' to set '\(lhs)' on",
                                                  suggestion: didYouMean(parts[0], among: ids)))
                    continue
                }
                parts.insert("stages", at: 0)
            }
            do {
                try json.set(value, at: parts)
            } catch let e as JSONPathError {
                problems.append(PipelineError("set.path", file: source, "'\(lhs)': \(e.message)"))
            }
        }
        if !problems.isEmpty { throw PipelineErrors(problems) }
    }
}
