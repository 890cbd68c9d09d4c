/// One problem found in a pipeline: where it is and what to do about it.
///
/// Rendered as `dcgan.json:12:18: $.stages.D.inputs.real: no stage 'aug' (did you mean 'augment'?)`.
public struct PipelineError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Sendable { case error, warning }

    /// A stable identifier of the kind of problem, for tests and tooling.
    public var code: String
    public var file: String
    public var path: JSONPath
    public var location: SourceLocation?
    public var message: String
    public var suggestion: String?
    public var severity: Severity

    public init(
        _ code: String, file: String = "", path: JSONPath = .root, location: SourceLocation? = nil,
        _ message: String, suggestion: String? = nil, severity: Severity = .error
    ) {
        self.code = code
        self.file = file
        self.path = path
        self.location = location
        self.message = message
        self.suggestion = suggestion
        self.severity = severity
    }

    public var description: String {
        var s = file.isEmpty ? "" : file
        if let location { s += ":\(location.line):\(location.column)" }
        if !s.isEmpty { s += ": " }
        if severity == .warning { s += "warning: " }
        // A problem with the file as a whole has no path worth showing.
        if path != .root { s += "\(path): " }
        s += message
        if let suggestion { s += " (\(suggestion))" }
        return s
    }
}

/// Every problem found in a pipeline at once.
public struct PipelineErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [PipelineError]
    public init(_ errors: [PipelineError]) { self.errors = errors }
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// "did you mean 'x'?" for the candidate closest to `word` by edit distance, when it is close.
public func didYouMean(_ word: String, among candidates: some Sequence<String>) -> String? {
    var best: (String, Int)?
    for c in candidates {
        let d = editDistance(word.lowercased(), c.lowercased())
        if best == nil || d < best!.1 { best = (c, d) }
    }
    guard let (name, d) = best, d < word.count, d <= max(1, word.count / 3) else { return nil }
    return "did you mean '\(name)'?"
}

/// Edit distance counting insertions, deletions, substitutions and swaps of neighbours
/// (optimal string alignment), so the common typo "stpes" is one edit from "steps".
public func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { d[i][0] = i }
    for j in 0...b.count { d[0][j] = j }
    for i in 1...a.count {
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
            }
        }
    }
    return d[a.count][b.count]
}
