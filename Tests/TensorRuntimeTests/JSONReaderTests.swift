import Testing
import TensorRuntime

/// The one JSON reader, as safetensors headers and pipeline files both use it.
@Suite struct JSONReaderTests {
    static func syntaxError(_ text: [UInt8], _ options: JSONParser.Options = .init()) -> JSONSyntaxError? {
        do {
            _ = try JSONParser.parse(bytes: text, options: options)
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: [
        (#"{"a": "\uD800\u0041"}"#, "unpaired surrogate in \\u escape", 19),
        (#"{"a": "\uDC00"}"#, "unpaired surrogate in \\u escape", 13),
        (#"{"a": "\uD800"}"#, "unpaired surrogate in \\u escape", 13),
        (#"["\u+fff"]"#, "invalid \\u escape", 4),
        (#"[1e999]"#, "number out of range", 6),
    ])
    func hostileEscapesAndNumbersAreErrorsWithTheirOffset(text: String, message: String, offset: Int) throws {
        let error = try #require(Self.syntaxError(Array(text.utf8)))
        #expect(error.message == message)
        #expect(error.offset == offset)
    }

    @Test func stringsMustBeValidUTF8() throws {
        let error = try #require(Self.syntaxError([0x5B, 0x22, 0xC3, 0x28, 0x22, 0x5D]))  // ["\xC3("]
        #expect(error.message == "string is not valid UTF-8")
        #expect(error.offset == 5 && error.location == JSONSourceLocation(line: 1, column: 6))
        #expect(try JSONParser.parse(bytes: Array(#"["é\u00e9\ud83d\ude00"]"#.utf8)).value == .array([.string("éé😀")]))
    }

    @Test func aHeaderReaderKeepsDuplicatesLimitsNestingAndSkipsLocations() throws {
        let options = JSONParser.Options(maxDepth: 2, rejectsDuplicateKeys: false, recordsLocations: false)
        let parsed = try JSONParser.parse(#"{"w": [1], "w": [2]}"#, options: options)
        #expect(parsed.value == .object([("w", .array([.number(1)])), ("w", .array([.number(2)]))]))
        #expect(parsed.locations.isEmpty)
        let deep = try #require(Self.syntaxError(Array("[[[1]]]".utf8), options))
        #expect(deep.message == "nesting deeper than 2 levels" && deep.offset == 2)
        let strict = try #require(Self.syntaxError(Array(#"{"w": 1, "w": 2}"#.utf8)))
        #expect(strict.message == "duplicate key \"w\"" && strict.offset == 9)
    }

    @Test func quotingRoundTripsControlCharacters() throws {
        let text = "a\"b\\c\n\u{1}"
        #expect(JSONValue.quote(text) == #""a\"b\\c\n\u0001""#)
        #expect(try JSONParser.parse(JSONValue.quote(text)).value == .string(text))
        #expect(JSONValue.number(5).kind == "a number" && JSONValue.number(5).typeName == "an integer")
    }
}
