import Testing
@testable import PipelineGraph

/// `--time-limit`'s durations, and how a run's progress combines steps and time.
@Suite struct TimeLimitTests {
    @Test func parsesHoursMinutesAndSecondsInOrder() throws {
        #expect(try TimeLimit(parsing: "90s").seconds == 90)
        #expect(try TimeLimit(parsing: "20m").seconds == 1200)
        #expect(try TimeLimit(parsing: "1h30m").seconds == 5400)
        #expect(try TimeLimit(parsing: "2h5s").seconds == 7205)
        #expect(try TimeLimit(parsing: "1m0.5s").seconds == 60.5)
        #expect(try TimeLimit(parsing: "1h30m").text == "1h30m")
    }

    @Test(arguments: [
        ("", "empty"),
        ("20", "a number needs a unit (20s, 20m or 20h)"),
        ("5m30", "'30' has no unit"),
        ("0s", "it must be longer than 0 seconds"),
        ("0h0m", "it must be longer than 0 seconds"),
        ("1m1h", "give h, m and s in that order, each once"),
        ("1m1m", "give h, m and s in that order, each once"),
        ("1h 30m", "no spaces"),
        ("90x", "'x' is not a unit (h, m or s)"),
        ("m", "'m' has no number before it"),
        ("1.5h", "'1.5h' is not a whole number of hours"),
        ("1..5s", "'1..5s' is not a number of seconds"),
        ("-5m", "'-' is not a unit (h, m or s)"),
        ("2401h", "longer than 100 days"),
        ("99999999999999999999s", "'99999999999999999999s' is not a number of seconds"),
    ])
    func refusesAMalformedDurationNamingIt(_ text: String, _ why: String) {
        let problem = #expect(throws: TimeLimit.Problem.self) { _ = try TimeLimit(parsing: text) }
        #expect(problem?.message == "--time-limit '\(text)': \(why); write a duration such as 90s, 20m or 1h30m")
    }
}
