/// A wall-clock budget for a run, as `--time-limit` takes it: hours, minutes and seconds in that
/// order, each at most once, e.g. `90s`, `20m`, `1h30m`, `2h`, `1m30.5s`.
public struct TimeLimit: Sendable, Equatable, CustomStringConvertible {
    public let seconds: Double
    /// The text it was parsed from.
    public let text: String

    /// A problem with a duration's text.
    public struct Problem: Error, CustomStringConvertible, Sendable {
        public var message: String
        public var description: String { message }
    }

    /// Longest accepted: 100 days (a longer one is a typo, not a plan).
    static let maximumSeconds = 100 * 86_400.0

    public init(parsing text: String, option: String = "--time-limit") throws {
        func problem(_ m: String) -> Problem {
            Problem(message: "\(option) '\(text)': \(m); write a duration such as 90s, 20m or 1h30m")
        }
        let units: [(Character, Double)] = [("h", 3600), ("m", 60), ("s", 1)]
        var total = 0.0, number = "", next = 0
        for c in text {
            if c.isASCII && (c.isNumber || c == ".") {
                number.append(c)
                continue
            }
            guard let u = units.firstIndex(where: { $0.0 == c }) else {
                throw problem(c.isWhitespace ? "no spaces" : "'\(c)' is not a unit (h, m or s)")
            }
            guard !number.isEmpty else { throw problem("'\(c)' has no number before it") }
            guard u >= next else { throw problem("give h, m and s in that order, each once") }
            // Fractions only for the last unit, seconds: 1.5h is 1h30m.
            guard let value = Double(number), number.count <= 12, c == "s" || !number.contains(".") else {
                throw problem("'\(number)\(c)' is not " + (c == "s" ? "a number of seconds" : "a whole number of \(c == "h" ? "hours" : "minutes")"))
            }
            total += value * units[u].1
            number = ""
            next = u + 1
        }
        if !number.isEmpty { throw problem(next == 0 ? "a number needs a unit (\(number)s, \(number)m or \(number)h)" : "'\(number)' has no unit") }
        guard next > 0 else { throw problem("empty") }
        guard total > 0 else { throw problem("it must be longer than 0 seconds") }
        guard total <= Self.maximumSeconds else { throw problem("longer than 100 days") }
        self.seconds = total
        self.text = text
    }

    public var description: String { text }
}
