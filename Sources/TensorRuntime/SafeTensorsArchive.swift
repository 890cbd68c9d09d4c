#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Named tensors and string metadata in the safetensors format, as used by checkpoints.
///
/// A file is an 8-byte little-endian header length, a JSON header mapping each name to its
/// `dtype`, `shape` and `data_offsets` (plus an optional `__metadata__` map of strings), then the
/// tensors' bytes back to back. Float tensors are written as F32 and integer arrays (step counts,
/// BatchNorm's `num_batches_tracked`) as I64; F32, F16, BF16 and I64 are read.
///
/// Every file is treated as hostile: a header that disagrees with the bytes is a thrown
/// `SafeTensorsError` naming the file and the tensor, never a crash or a silent misread.
///
/// Files written here carry a checksum of the data buffer in the metadata (`ganflow.checksum`),
/// so a flipped bit in a tensor, which leaves the layout valid, is found when the file is read;
/// files without one (from PyTorch) are read unchecked. The key is not shown in `metadata`.
public struct SafeTensorsArchive {
    /// An element type of the format.
    public enum DType: String, Sendable, CaseIterable {
        case f32 = "F32", f16 = "F16", bf16 = "BF16", i64 = "I64"

        /// Bytes per element.
        public var size: Int {
            switch self {
            case .f32: 4
            case .f16, .bf16: 2
            case .i64: 8
            }
        }
    }

    /// The values of one entry: floats (whatever their stored precision) or 64-bit integers.
    public enum Payload {
        case floats(Tensor)
        case integers([Int64])
    }

    /// One named entry.
    public struct Entry {
        /// The element type in the file read, or the type it will be written as.
        public let dtype: DType
        public let shape: [Int]
        public let payload: Payload

        /// The element type this entry is written as: F32 for floats and I64 for integers, whatever
        /// precision a file it was read from stored them in (the values are held widened).
        var writtenType: DType {
            switch payload {
            case .floats: .f32
            case .integers: .i64
            }
        }
    }

    /// Free-form string metadata, written under `__metadata__`.
    public var metadata: [String: String]
    /// Entry names, in header order when read and insertion order when built.
    public private(set) var names: [String] = []
    private var entries: [String: Entry] = [:]
    /// Where this archive was read from, for error messages.
    public let source: String

    /// An empty archive; `source` names it in error messages.
    public init(metadata: [String: String] = [:], source: String = "<memory>") {
        self.metadata = metadata
        self.source = source
    }

    /// The entry called `name`, if any.
    public func entry(_ name: String) -> Entry? { entries[name] }

    /// Adds or replaces a float tensor, written as F32.
    ///
    /// The tensor is referenced, not copied: its values at the time of writing are saved.
    public mutating func set(_ name: String, _ tensor: Tensor) {
        insert(name, Entry(dtype: .f32, shape: tensor.shape, payload: .floats(tensor)))
    }

    /// Adds or replaces an array of integers of shape `shape`, written as I64.
    public mutating func set(_ name: String, integers: [Int64], shape: [Int]) {
        precondition(Tensor.elementCount(shape) == integers.count, "\(integers.count) integers for shape \(describe(shape))")
        insert(name, Entry(dtype: .i64, shape: shape, payload: .integers(integers)))
    }

    /// Adds or replaces a scalar integer, written as an I64 of shape `[]`.
    public mutating func set(_ name: String, integer: Int64) {
        set(name, integers: [integer], shape: [])
    }

    /// Removes the entry called `name`, if any.
    public mutating func remove(_ name: String) {
        if entries.removeValue(forKey: name) != nil { names.removeAll { $0 == name } }
    }

    private mutating func insert(_ name: String, _ entry: Entry) {
        precondition(name != SafeTensorsArchive.metadataKey, "'\(name)' is reserved for metadata")
        if entries.updateValue(entry, forKey: name) == nil { names.append(name) }
    }

    /// The entry `name` as Float32 values, converting from F16, BF16 or I64.
    ///
    /// A float entry is returned as the archive holds it, not copied; copy before changing it.
    public func tensor(_ name: String) throws -> Tensor {
        guard let entry = entries[name] else { throw SafeTensorsError(file: source, tensor: name, message: "not found") }
        switch entry.payload {
        case .floats(let t):
            return t
        case .integers(let values):
            let t = Tensor(uninitialized: entry.shape)
            for (i, v) in values.enumerated() { t.data[i] = Float(v) }
            return t
        }
    }

    /// The entry `name` as integers; it must have been stored as I64.
    public func integers(_ name: String) throws -> [Int64] {
        guard let entry = entries[name] else { throw SafeTensorsError(file: source, tensor: name, message: "not found") }
        guard case .integers(let values) = entry.payload else {
            throw SafeTensorsError(file: source, tensor: name, message: "is \(entry.dtype.rawValue), not I64")
        }
        return values
    }

    static let metadataKey = "__metadata__"
    static let checksumKey = "ganflow.checksum"
    /// Headers larger than this are refused before parsing (the reference implementation's limit).
    static let maxHeaderBytes = 100_000_000
}

// MARK: - Writing

extension SafeTensorsArchive {
    /// The JSON header, padded with spaces so the data buffer starts 8-byte aligned.
    func header() -> [UInt8] {
        var members: [String] = []
        var stored = metadata
        stored[SafeTensorsArchive.checksumKey] = SafeTensorsArchive.hex(dataChecksum())
        let pairs = stored.sorted { $0.key < $1.key }
            .map { JSONValue.quote($0.key) + ":" + JSONValue.quote($0.value) }
        members.append(JSONValue.quote(SafeTensorsArchive.metadataKey) + ":{" + pairs.joined(separator: ",") + "}")
        var offset = 0
        for name in names {
            let entry = entries[name]!
            let bytes = Tensor.elementCount(entry.shape) * entry.writtenType.size
            let shape = entry.shape.map(String.init).joined(separator: ",")
            members.append(JSONValue.quote(name) + ":{\"dtype\":\"\(entry.writtenType.rawValue)\",\"shape\":[\(shape)],"
                + "\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        var json = Array(("{" + members.joined(separator: ",") + "}").utf8)
        while (json.count + 8) % 8 != 0 { json.append(0x20) }
        return json
    }

    /// The whole file in memory.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        appendEncoded { out.append(contentsOf: $0) }
        return out
    }

    /// Writes the file atomically (see `AtomicFile`), streaming tensors without a full copy.
    public func write(to path: String) throws {
        try AtomicFile.write(to: path) { writer in
            var failure: Error?
            appendEncoded { bytes in
                guard failure == nil else { return }
                do { try writer.write(bytes) } catch { failure = error }
            }
            if let failure { throw failure }
        }
    }

    /// The checksum of the data buffer as it will be written: the entries' bytes in order.
    func dataChecksum() -> UInt64 {
        var checksum = DataChecksum()
        for name in names {
            switch entries[name]!.payload {
            case .floats(let t):
                let c = t.contiguousData()
                #if _endian(little)
                checksum.add(UnsafeRawBufferPointer(start: c.data, count: c.count * 4))
                #else
                (0..<c.count).map { c.data[$0].bitPattern.littleEndian }.withUnsafeBytes { checksum.add($0) }
                #endif
            case .integers(let values):
                values.map { $0.littleEndian }.withUnsafeBytes { checksum.add($0) }
            }
        }
        return checksum.value
    }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    private func appendEncoded(_ sink: (UnsafeRawBufferPointer) -> Void) {
        let json = header()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { sink($0) }
        json.withUnsafeBytes { sink($0) }
        for name in names {
            let entry = entries[name]!
            switch entry.payload {
            case .floats(let t):
                let c = t.contiguousData()
                #if _endian(little)
                sink(UnsafeRawBufferPointer(start: c.data, count: c.count * 4))
                #else
                let le = (0..<c.count).map { c.data[$0].bitPattern.littleEndian }
                le.withUnsafeBytes { sink($0) }
                #endif
            case .integers(let values):
                let le = values.map { $0.littleEndian }
                le.withUnsafeBytes { sink($0) }
            }
        }
    }
}

// MARK: - Reading

extension SafeTensorsArchive {
    /// Reads and validates the file at `path`.
    public init(contentsOf path: String) throws {
        let bytes = try readWholeFile(path)
        try self.init(decoding: bytes, source: path)
    }

    /// Validates and decodes a whole file's bytes; `source` names it in errors.
    public init(decoding bytes: [UInt8], source: String) throws {
        self.init(source: source)
        try bytes.withUnsafeBytes { try decode($0) }
    }

    private struct Located {
        var name: String
        var dtype: DType
        var shape: [Int]
        var begin: Int
        var end: Int
    }

    private mutating func decode(_ file: UnsafeRawBufferPointer) throws {
        func fail(_ tensor: String?, _ message: String) -> SafeTensorsError {
            SafeTensorsError(file: source, tensor: tensor, message: message)
        }
        guard file.count >= 8 else {
            throw fail(nil, "file is \(file.count) bytes, shorter than the 8-byte header length")
        }
        let declared = UInt64(littleEndian: file.loadUnaligned(as: UInt64.self))
        guard declared <= UInt64(file.count - 8) else {
            throw fail(nil, "header length \(declared) exceeds the \(file.count - 8) bytes after the length field")
        }
        guard declared <= UInt64(SafeTensorsArchive.maxHeaderBytes) else {
            throw fail(nil, "header length \(declared) exceeds the limit of \(SafeTensorsArchive.maxHeaderBytes) bytes")
        }
        let headerLength = Int(declared)
        let json: JSONValue
        do {
            json = try JSONParser.parse(bytes: Array(UnsafeRawBufferPointer(rebasing: file[8..<(8 + headerLength)])),
                                        options: SafeTensorsArchive.headerSyntax).value
        } catch {
            throw fail(nil, "header is not valid JSON: \(error.message) at byte \(error.offset)")
        }
        guard case .object(let members) = json else { throw fail(nil, "header is \(json.kind), not a JSON object") }

        let buffer = UnsafeRawBufferPointer(rebasing: file[(8 + headerLength)...])
        var located: [Located] = []
        var seen = Set<String>()
        var sawMetadata = false
        for (name, value) in members {
            if name == SafeTensorsArchive.metadataKey {
                guard !sawMetadata else { throw fail(nil, "'__metadata__' appears twice in the header") }
                sawMetadata = true
                metadata = try decodeMetadata(value)
                continue
            }
            guard seen.insert(name).inserted else { throw fail(name, "appears twice in the header") }
            located.append(try locate(name, value, bufferSize: buffer.count))
        }

        // The ranges must tile the buffer exactly: sorted by position, each starts where the last ended.
        let ordered = located.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var end = 0
        var previous: Located?
        for t in ordered {
            if t.begin < end, let p = previous {
                throw fail(t.name, "data_offsets [\(t.begin), \(t.end)] overlap tensor '\(p.name)' at [\(p.begin), \(p.end)]")
            }
            if t.begin > end {
                let after = previous.map { "after tensor '\($0.name)'" } ?? "at the start of the data buffer"
                throw fail(t.name, "data_offsets [\(t.begin), \(t.end)] leave bytes \(end)..<\(t.begin) unused \(after)")
            }
            end = t.end
            previous = t
        }
        guard end == buffer.count else {
            throw fail(nil, "data buffer has \(buffer.count) bytes, but the tensors cover only \(end)")
        }
        if let recorded = metadata.removeValue(forKey: SafeTensorsArchive.checksumKey) {
            var checksum = DataChecksum()
            for t in ordered { checksum.add(UnsafeRawBufferPointer(rebasing: buffer[t.begin..<t.end])) }
            let actual = SafeTensorsArchive.hex(checksum.value)
            guard actual == recorded else {
                throw fail(nil, "the tensor data does not match its checksum (\(actual), recorded \(recorded)): the file is corrupt")
            }
        }

        for t in located {
            let bytes = UnsafeRawBufferPointer(rebasing: buffer[t.begin..<t.end])
            insert(t.name, Entry(dtype: t.dtype, shape: t.shape, payload: SafeTensorsArchive.payload(t.dtype, t.shape, bytes)))
        }
    }

    private func decodeMetadata(_ value: JSONValue) throws -> [String: String] {
        guard case .object(let pairs) = value else {
            throw SafeTensorsError(file: source, tensor: nil, message: "'__metadata__' is \(value.kind), not an object")
        }
        var result: [String: String] = [:]
        for (key, v) in pairs {
            guard case .string(let s) = v else {
                throw SafeTensorsError(file: source, tensor: nil, message: "'__metadata__' entry '\(key)' is \(v.kind), not a string")
            }
            guard result.updateValue(s, forKey: key) == nil else {
                throw SafeTensorsError(file: source, tensor: nil, message: "'__metadata__' entry '\(key)' appears twice")
            }
        }
        return result
    }

    /// Checks one header entry on its own: fields, dtype, shape, offsets within the buffer, size.
    private func locate(_ name: String, _ value: JSONValue, bufferSize: Int) throws -> Located {
        func fail(_ message: String) -> SafeTensorsError {
            SafeTensorsError(file: source, tensor: name, message: message)
        }
        guard case .object(let fields) = value else { throw fail("entry is \(value.kind), not an object") }
        var byKey: [String: JSONValue] = [:]
        for (key, v) in fields {
            guard byKey.updateValue(v, forKey: key) == nil else { throw fail("field '\(key)' appears twice") }
        }
        guard let dtypeValue = byKey["dtype"] else { throw fail("missing 'dtype'") }
        guard case .string(let dtypeName) = dtypeValue else { throw fail("'dtype' is \(dtypeValue.kind), not a string") }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw fail("unsupported dtype '\(dtypeName)' (supported: F32, F16, BF16, I64)")
        }

        guard let shapeValue = byKey["shape"] else { throw fail("missing 'shape'") }
        guard case .array(let dims) = shapeValue else { throw fail("'shape' is \(shapeValue.kind), not an array") }
        var shape: [Int] = []
        for d in dims {
            guard case .number(let x) = d else { throw fail("'shape' holds \(d.kind), not an integer") }
            guard let n = Self.integer(x) else { throw fail("'shape' holds \(d.serialized()), not an integer") }
            shape.append(n)
        }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("shape \(describe(shape)) has a negative dimension") }
        var byteCount = dtype.size
        for d in shape {
            let (product, overflow) = byteCount.multipliedReportingOverflow(by: d)
            guard !overflow else { throw fail("shape \(describe(shape)) is too large") }
            byteCount = product
        }

        guard let offsetsValue = byKey["data_offsets"] else { throw fail("missing 'data_offsets'") }
        guard case .array(let offsetItems) = offsetsValue, offsetItems.count == 2,
              case .number(let beginValue) = offsetItems[0], let begin = Self.integer(beginValue), begin >= 0,
              case .number(let endValue) = offsetItems[1], let end = Self.integer(endValue), end >= 0
        else { throw fail("'data_offsets' must be two non-negative integers [begin, end]") }
        guard begin <= end else { throw fail("data_offsets [\(begin), \(end)] end before they begin") }
        guard end <= bufferSize else {
            throw fail("data_offsets [\(begin), \(end)] extend beyond the \(bufferSize)-byte data buffer")
        }
        guard end - begin == byteCount else {
            throw fail("shape \(describe(shape)) of \(dtype.rawValue) needs \(byteCount) bytes, but data_offsets [\(begin), \(end)] hold \(end - begin)")
        }
        return Located(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    /// The header reads JSON with duplicate names kept (to name the tensor given twice), and
    /// nesting far shallower than any valid header needs refused.
    static let headerSyntax = JSONParser.Options(maxDepth: 64, rejectsDuplicateKeys: false, recordsLocations: false)

    /// `x` as an integer, when it is one that a Double holds exactly (up to 2^53 in magnitude:
    /// beyond that, offsets and sizes cannot describe bytes in memory).
    private static func integer(_ x: Double) -> Int? {
        x.rounded() == x && abs(x) <= 9_007_199_254_740_992 ? Int(x) : nil
    }

    private static func payload(_ dtype: DType, _ shape: [Int], _ bytes: UnsafeRawBufferPointer) -> Payload {
        let n = Tensor.elementCount(shape)
        if dtype == .i64 {
            return .integers((0..<n).map { Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) })
        }
        let t = Tensor(uninitialized: shape)
        let out = t.data
        switch dtype {
        case .f32:
            #if _endian(little)
            if n > 0 { UnsafeMutableRawPointer(out).copyMemory(from: bytes.baseAddress!, byteCount: n * 4) }
            #else
            for i in 0..<n { out[i] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))) }
            #endif
        case .f16:
            for i in 0..<n { out[i] = floatFromHalf(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) }
        case .bf16:
            for i in 0..<n {
                out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) << 16)
            }
        case .i64:
            preconditionFailure("handled above")
        }
        return .floats(t)
    }
}

/// A 64-bit checksum of a sequence of byte ranges (one per tensor), to find corruption, not attacks.
///
/// Each range is folded in 8-byte words by xor, multiplication by an odd constant and rotation,
/// each a bijection of the state, so any change within one word always changes the result, and
/// the range's length is folded in first, so moving bytes between tensors does too.
struct DataChecksum {
    private(set) var value: UInt64 = 0x243F_6A88_85A3_08D3

    private mutating func mix(_ word: UInt64) {
        let product = (value ^ word) &* 0x9E37_79B9_7F4A_7C15
        value = product << 27 | product >> 37
    }

    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        mix(UInt64(bytes.count))
        let words = bytes.count / 8
        if words > 0 {
            let base = bytes.baseAddress!
            for i in 0..<words { mix(UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))) }
        }
        var tail: UInt64 = 0
        for (shift, i) in (words * 8..<bytes.count).enumerated() { tail |= UInt64(bytes[i]) << (8 * UInt64(shift)) }
        mix(tail)
    }
}

/// Widens an IEEE 754 binary16 bit pattern to Float, exactly (subnormals, infinities and NaNs included).
func floatFromHalf(_ h: UInt16) -> Float {
    let sign: UInt32 = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    let mantissa = UInt32(h & 0x3FF)
    switch exponent {
    case 0:
        let magnitude = Float(mantissa) * 0x1p-24
        return sign == 0 ? magnitude : -magnitude
    case 31:
        return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)
    default:
        return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
    }
}

/// The whole contents of the file at `path`.
func readWholeFile(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw FileError(path: path, operation: "open", errno: errno) }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw FileError(path: path, operation: "stat", errno: errno) }
    let size = Int(info.st_size)
    var failure: Int32 = 0
    let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
        while initialized < size {
            let n = read(fd, buffer.baseAddress! + initialized, size - initialized)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                failure = n < 0 ? errno : EIO
                break
            }
            initialized += n
        }
    }
    guard failure == 0 else {
        throw failure == EIO && bytes.count < size
            ? FileError(path: path, message: "file shrank while being read")
            : FileError(path: path, operation: "read", errno: failure)
    }
    return bytes
}

/// A malformed safetensors file, or a missing or mistyped entry, naming the file and the tensor.
public struct SafeTensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String
    public var tensor: String?
    public var message: String

    public init(file: String, tensor: String?, message: String) {
        self.file = file
        self.tensor = tensor
        self.message = message
    }

    public var description: String {
        "\(file): " + (tensor.map { "tensor '\($0)': " } ?? "") + message
    }
}
