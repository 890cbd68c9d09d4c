/// Where a value starts in the source text (1-based).
public struct JSONSourceLocation: Hashable, Sendable {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
}

/// A JSON syntax error with its position.
public struct JSONSyntaxError: Error, Sendable {
    public var message: String
    public var location: JSONSourceLocation
    /// Bytes from the start of the text to the error.
    public var offset: Int
}

/// A parsed document: its value and where each path starts in the text.
public struct ParsedJSON: Sendable {
    public var value: JSONValue
    /// Empty when the parser was asked not to record them.
    public var locations: [JSONPath: JSONSourceLocation]
}

/// GANFlow's one JSON reader (RFC 8259, strict): pipeline files, run records, metrics lines and
/// the headers of safetensors files.
///
/// It records the line and column of every value, so that validation errors can point into the
/// file, and the byte offset of a syntax error. Strings must be valid UTF-8, and nesting is
/// limited, so a hostile file gives an error, never a crash. Object keys keep their order.
public struct JSONParser {
    /// What a reader of a given kind of document needs.
    public struct Options: Sendable {
        /// Containers nested deeper than this are an error (a guard for the stack).
        public var maxDepth = 256
        /// Whether a key given twice in one object is a syntax error (a pipeline with two stages of
        /// the same id is a mistake, not a merge). When false, objects keep every entry, so that
        /// the reader can name the duplicate in its own terms.
        public var rejectsDuplicateKeys = true
        /// Whether `ParsedJSON.locations` is filled (one entry per value).
        public var recordsLocations = true

        public init(maxDepth: Int = 256, rejectsDuplicateKeys: Bool = true, recordsLocations: Bool = true) {
            self.maxDepth = maxDepth
            self.rejectsDuplicateKeys = rejectsDuplicateKeys
            self.recordsLocations = recordsLocations
        }
    }

    private let bytes: [UInt8]
    private let options: Options
    private var i = 0
    private var line = 1
    private var lineStart = 0
    private var locations: [JSONPath: JSONSourceLocation] = [:]
    private var depth = 0

    public static func parse(_ text: String, options: Options = Options()) throws(JSONSyntaxError) -> ParsedJSON {
        var p = JSONParser(bytes: Array(text.utf8), options: options)
        return try p.document()
    }

    public static func parse(bytes: [UInt8], options: Options = Options()) throws(JSONSyntaxError) -> ParsedJSON {
        var p = JSONParser(bytes: bytes, options: options)
        return try p.document()
    }

    private init(bytes: [UInt8], options: Options) {
        self.bytes = bytes
        self.options = options
    }

    private var here: JSONSourceLocation { JSONSourceLocation(line: line, column: i - lineStart + 1) }

    private func fail(_ message: String) -> JSONSyntaxError {
        JSONSyntaxError(message: message, location: here, offset: i)
    }

    private mutating func document() throws(JSONSyntaxError) -> ParsedJSON {
        skipSpace()
        let v = try value(at: options.recordsLocations ? .root : nil)
        skipSpace()
        if i < bytes.count { throw fail("unexpected \(describeByte()) after the end of the document") }
        return ParsedJSON(value: v, locations: locations)
    }

    private func describeByte() -> String {
        guard i < bytes.count else { return "end of file" }
        let b = bytes[i]
        if b >= 0x20 && b < 0x7f { return "'\(Character(Unicode.Scalar(b)))'" }
        return "byte 0x" + String(b, radix: 16)
    }

    private mutating func skipSpace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0D: i += 1
            case 0x0A: i += 1; line += 1; lineStart = i
            default: return
            }
        }
    }

    /// The value at `path` (nil when locations are not recorded).
    private mutating func value(at path: JSONPath?) throws(JSONSyntaxError) -> JSONValue {
        guard i < bytes.count else { throw fail("unexpected end of file, expected a value") }
        if let path { locations[path] = here }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object(at: path)
        case UInt8(ascii: "["): return try array(at: path)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw fail("unexpected \(describeByte()), expected a value")
        }
    }

    private mutating func literal(_ word: String) throws(JSONSyntaxError) {
        let w = Array(word.utf8)
        guard i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w else {
            throw fail("unexpected \(describeByte()), expected a value")
        }
        i += w.count
    }

    private mutating func enter() throws(JSONSyntaxError) {
        depth += 1
        if depth > options.maxDepth { throw fail("nesting deeper than \(options.maxDepth) levels") }
    }

    private mutating func object(at path: JSONPath?) throws(JSONSyntaxError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        i += 1
        var entries: [(String, JSONValue)] = []
        var seen = Set<String>()
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object([]) }
        while true {
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else {
                throw fail("unexpected \(describeByte()), expected a key in double quotes")
            }
            let keyLocation = here, keyOffset = i
            let key = try string()
            if options.rejectsDuplicateKeys && !seen.insert(key).inserted {
                throw JSONSyntaxError(message: "duplicate key \"\(key)\"", location: keyLocation, offset: keyOffset)
            }
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else {
                throw fail("unexpected \(describeByte()), expected ':' after key \"\(key)\"")
            }
            i += 1
            skipSpace()
            entries.append((key, try value(at: path.map { $0 / key })))
            skipSpace()
            guard i < bytes.count else { throw fail("unexpected end of file, expected ',' or '}'") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(entries) }
            throw fail("unexpected \(describeByte()), expected ',' or '}'")
        }
    }

    private mutating func array(at path: JSONPath?) throws(JSONSyntaxError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        i += 1
        var items: [JSONValue] = []
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array([]) }
        while true {
            skipSpace()
            items.append(try value(at: path.map { $0 / items.count }))
            skipSpace()
            guard i < bytes.count else { throw fail("unexpected end of file, expected ',' or ']'") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            throw fail("unexpected \(describeByte()), expected ',' or ']'")
        }
    }

    private mutating func string() throws(JSONSyntaxError) -> String {
        i += 1
        var utf8: [UInt8] = []
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") { i += 1; break }
            if b < 0x20 { throw fail("control character in string (use \\n or \\t)") }
            if b == UInt8(ascii: "\\") {
                i += 1
                guard i < bytes.count else { throw fail("unterminated string") }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(e)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"): utf8.append(contentsOf: String(Character(try escapedScalar())).utf8)
                default: throw fail("invalid escape '\\\(Character(Unicode.Scalar(e)))' in string")
                }
            } else {
                utf8.append(b)
                i += 1
            }
        }
        let s = String(decoding: utf8, as: UTF8.self)
        // Decoding replaces invalid sequences, which changes the bytes.
        guard s.utf8.elementsEqual(utf8) else { throw fail("string is not valid UTF-8") }
        return s
    }

    /// The scalar of a `\u` escape (after the `u`), joining a UTF-16 surrogate pair.
    private mutating func escapedScalar() throws(JSONSyntaxError) -> Unicode.Scalar {
        var code = try hex4()
        if (0xD800..<0xDC00).contains(code) {
            guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                throw fail("unpaired surrogate in \\u escape")
            }
            i += 2
            let low = try hex4()
            guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate in \\u escape") }
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
        }
        guard let scalar = Unicode.Scalar(code) else { throw fail("unpaired surrogate in \\u escape") }
        return scalar
    }

    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        guard i + 4 <= bytes.count else { throw fail("invalid \\u escape") }
        var code: UInt32 = 0
        for b in bytes[i..<(i + 4)] {
            let digit: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = b - UInt8(ascii: "A") + 10
            default: throw fail("invalid \\u escape")
            }
            code = code << 4 | UInt32(digit)
        }
        i += 4
        return code
    }

    private mutating func number() throws(JSONSyntaxError) -> Double {
        let start = i
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        func digits() -> Int {
            let s = i
            while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") { i += 1 }
            return i - s
        }
        let intDigits = digits()
        if intDigits == 0 { throw fail("invalid number") }
        if intDigits > 1, bytes[start + (bytes[start] == UInt8(ascii: "-") ? 1 : 0)] == UInt8(ascii: "0") {
            throw fail("invalid number (leading zero)")
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            if digits() == 0 { throw fail("invalid number (no digits after '.')") }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            if digits() == 0 { throw fail("invalid number (no digits in exponent)") }
        }
        guard let v = Double(String(decoding: bytes[start..<i], as: UTF8.self)), v.isFinite else {
            throw fail("number out of range")
        }
        return v
    }
}
