import Testing
@testable import PipelineGraph

@Suite struct JSONParserTests {
    @Test func parsesValuesAndKeepsKeyOrder() throws {
        let p = try JSONParser.parse(#"{"b": 1, "a": [true, null, "x\n\u00e9"], "c": {"d": -2.5e1}}"#)
        #expect(p.value.objectEntries?.map(\.0) == ["b", "a", "c"])
        #expect(p.value["a"] == .array([.bool(true), .null, .string("x\né")]))
        #expect(p.value["c"]?["d"] == .number(-25))
    }

    @Test func recordsLocationsOfValues() throws {
        let text = "{\n  \"stages\": {\n    \"G\": {\"type\": \"x\"}\n  }\n}"
        let p = try JSONParser.parse(text)
        #expect(p.locations[JSONPath.root / "stages" / "G"] == SourceLocation(line: 3, column: 10))
        #expect(p.locations[JSONPath.root / "stages" / "G" / "type"] == SourceLocation(line: 3, column: 19))
    }

    @Test(arguments: [
        ("{\"a\": 1,}", "unexpected '}', expected a key in double quotes", 1, 9),
        ("{\"a\" 1}", "unexpected '1', expected ':' after key \"a\"", 1, 6),
        ("[1, 2", "unexpected end of file, expected ',' or ']'", 1, 6),
        ("{\"a\": 01}", "invalid number (leading zero)", 1, 9),
        ("{\"a\": 1, \"a\": 2}", "duplicate key \"a\"", 1, 10),
        ("{\n\"a\": tru}", "unexpected 't', expected a value", 2, 6),
        ("{} x", "unexpected 'x' after the end of the document", 1, 4),
    ])
    func reportsSyntaxErrorsWithPosition(text: String, message: String, line: Int, column: Int) {
        do {
            _ = try JSONParser.parse(text)
            Issue.record("expected a syntax error")
        } catch {
            #expect(error.message == message)
            #expect(error.location == SourceLocation(line: line, column: column))
        }
    }

    @Test func roundTripsThroughSerialization() throws {
        let text = #"{"name": "x", "list": [1, 2.5, "s"], "nested": {"k": [{"a": null}]}}"#
        let v = try JSONParser.parse(text).value
        #expect(try JSONParser.parse(v.serialized()).value == v)
        #expect(try JSONParser.parse(v.serialized(indent: nil)).value == v)
    }

    @Test func pathsRenderLikeJSONPath() {
        #expect((JSONPath.root / "stages" / "D" / "inputs" / "real").description == "$.stages.D.inputs.real")
        #expect((JSONPath.root / "schedule" / 1 / "run").description == "$.schedule[1].run")
        #expect((JSONPath.root / "a b").description == "$[\"a b\"]")
    }

    @Test func suggestsNearbyNames() {
        #expect(didYouMean("agument", among: ["augment", "data", "G"]) == "did you mean 'augment'?")
        #expect(didYouMean("zzzzzz", among: ["augment", "data"]) == nil)
        #expect(editDistance("kitten", "sitting") == 3)
    }
}
