import CZip
import Foundation

/// A floating-point array in NumPy's `.npy` format, and named arrays in its `.npz` archive (a ZIP
/// of `.npy` files, as `numpy.savez` writes them): how pytorch-fid stores reference statistics
/// (`mu` [2048], `sigma` [2048, 2048]).
///
/// Reading accepts format versions 1 to 3, little- or big-endian `f4` and `f8`, C or Fortran
/// order. Everything a hostile header can claim is checked before memory is allocated from it:
/// the header's length against the file, the shape's element count against overflow, and the data
/// size against the bytes that are really there. Writing produces version 1.0, `<f8`, C order.
public struct NumPyArray: Equatable, Sendable {
    public var shape: [Int]
    /// Row-major (C order) values.
    public var values: [Double]

    public init(shape: [Int], values: [Double]) {
        precondition(shape.reduce(1, *) == values.count, "NumPyArray: \(values.count) values for shape \(shape)")
        self.shape = shape
        self.values = values
    }

    /// The largest header accepted (NumPy itself writes a few hundred bytes).
    static let maxHeader = 65536

    /// Decodes the bytes of one `.npy` file; `source` names it in errors.
    public init(npy bytes: [UInt8], source: String) throws {
        func fail(_ reason: String) -> ImageIOError { ImageIOError(path: source, reason) }
        let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw fail("not a NumPy .npy array (no \\x93NUMPY magic)")
        }
        let major = bytes[6]
        let headerLength: Int, start: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            start = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated .npy header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            start = 12
        default:
            throw fail(".npy format version \(major).\(bytes[7]) is not supported (1 to 3 are)")
        }
        guard headerLength <= Self.maxHeader, start + headerLength <= bytes.count else {
            throw fail(".npy header of \(headerLength) bytes does not fit in the \(bytes.count)-byte file")
        }
        guard let header = String(bytes: bytes[start..<(start + headerLength)], encoding: .utf8) else {
            throw fail(".npy header is not text")
        }
        let fields = try Self.parseHeader(header, fail)
        let count = try fields.shape.reduce(1) { total, d in
            let (product, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow, product <= Int(Int32.max) else { throw fail("shape \(fields.shape) is too large") }
            return product
        }
        let dataStart = start + headerLength
        let available = bytes.count - dataStart
        guard available == count * fields.itemSize else {
            throw fail("shape \(fields.shape) of '\(fields.descr)' needs \(count * fields.itemSize) bytes of data, the file holds \(available)")
        }
        var values = [Double](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            let data = raw.baseAddress! + dataStart
            for i in 0..<count {
                let p = data + i * fields.itemSize
                if fields.itemSize == 8 {
                    var bits = UInt64(0)
                    memcpy(&bits, p, 8)
                    values[i] = Double(bitPattern: fields.bigEndian ? UInt64(bigEndian: bits) : UInt64(littleEndian: bits))
                } else {
                    var bits = UInt32(0)
                    memcpy(&bits, p, 4)
                    values[i] = Double(Float(bitPattern: fields.bigEndian ? UInt32(bigEndian: bits) : UInt32(littleEndian: bits)))
                }
            }
        }
        if fields.fortranOrder && fields.shape.count > 1 {
            values = Self.reordered(fromFortran: values, shape: fields.shape)
        }
        shape = fields.shape
        self.values = values
    }

    /// The bytes of a version 1.0 `.npy` file holding `values` as `<f8`.
    public var npyBytes: [UInt8] {
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': (\(dims)), }"
        // Magic, version and length take 10 bytes; NumPy pads the header with spaces to a multiple of 64, ending in \n.
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        out += Array(header.utf8)
        out.reserveCapacity(out.count + values.count * 8)
        for v in values {
            withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 }
        }
        return out
    }

    private struct HeaderFields {
        var descr: String
        var itemSize: Int
        var bigEndian: Bool
        var fortranOrder: Bool
        var shape: [Int]
    }

    /// The three keys of NumPy's header, a Python dict literal such as
    /// `{'descr': '<f8', 'fortran_order': False, 'shape': (2048, 2048), }`.
    private static func parseHeader(_ header: String, _ fail: (String) -> ImageIOError) throws -> HeaderFields {
        func value(of key: String) throws -> Substring {
            guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\""),
                  let colon = header[keyRange.upperBound...].firstIndex(of: ":") else {
                throw fail(".npy header has no '\(key)': \(header.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            return header[header.index(after: colon)...].drop { $0 == " " }
        }
        let descrText = try value(of: "descr")
        guard let quote = descrText.first, quote == "'" || quote == "\"",
              let end = descrText.dropFirst().firstIndex(of: quote) else {
            throw fail(".npy header's 'descr' is not a string")
        }
        let descr = String(descrText[descrText.index(after: descrText.startIndex)..<end])
        let itemSize: Int, bigEndian: Bool
        switch descr {
        case "<f8": (itemSize, bigEndian) = (8, false)
        case ">f8": (itemSize, bigEndian) = (8, true)
        case "<f4", "|f4": (itemSize, bigEndian) = (4, false)
        case ">f4": (itemSize, bigEndian) = (4, true)
        default: throw fail("arrays of '\(descr)' are not supported (float32 or float64 are: '<f4', '<f8')")
        }
        let order = try value(of: "fortran_order")
        let fortran: Bool
        if order.hasPrefix("True") { fortran = true } else if order.hasPrefix("False") { fortran = false } else {
            throw fail(".npy header's 'fortran_order' is neither True nor False")
        }
        let shapeText = try value(of: "shape")
        guard shapeText.first == "(", let close = shapeText.firstIndex(of: ")") else {
            throw fail(".npy header's 'shape' is not a tuple")
        }
        var shape: [Int] = []
        for part in shapeText[shapeText.index(after: shapeText.startIndex)..<close].split(separator: ",") {
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let d = Int(trimmed), d >= 0 else { throw fail(".npy header's 'shape' holds '\(trimmed)', not a size") }
            shape.append(d)
        }
        guard shape.count <= 32 else { throw fail(".npy shape of rank \(shape.count) is not supported") }
        return HeaderFields(descr: descr, itemSize: itemSize, bigEndian: bigEndian, fortranOrder: fortran, shape: shape)
    }

    /// Column-major values of `shape` in row-major order.
    private static func reordered(fromFortran values: [Double], shape: [Int]) -> [Double] {
        var strides = [Int](repeating: 1, count: shape.count)
        for a in 1..<shape.count { strides[a] = strides[a - 1] * shape[a - 1] }
        var out = [Double](repeating: 0, count: values.count)
        var index = [Int](repeating: 0, count: shape.count)
        for i in 0..<values.count {
            var source = 0
            for a in 0..<shape.count { source += index[a] * strides[a] }
            out[i] = values[source]
            var a = shape.count - 1
            while a >= 0 {
                index[a] += 1
                if index[a] < shape[a] { break }
                index[a] = 0
                a -= 1
            }
        }
        return out
    }
}

/// Named arrays in a NumPy `.npz` archive.
public enum NumPyArchive {
    /// The largest `.npy` member read (a 2048 x 2048 float64 covariance is 32 MiB).
    public static let maxMemberBytes = 1 << 30

    /// Reads the arrays `names` (without `.npy`) from the archive at `path`.
    public static func read(_ path: String, names: [String]) throws -> [String: NumPyArray] {
        var error: Int32 = 0
        guard let archive = zip_open(path, ZIP_RDONLY, &error) else {
            if !FileManager.default.fileExists(atPath: path) { throw ImageIOError(path: path, "no such file") }
            throw ImageIOError(path: path, "not a NumPy .npz archive (a ZIP file): \(zipErrorText(error))")
        }
        defer { zip_discard(archive) }
        var out: [String: NumPyArray] = [:]
        for name in names {
            let member = name + ".npy"
            var stat = zip_stat_t()
            zip_stat_init(&stat)
            guard zip_stat(archive, member, 0, &stat) == 0 else {
                let present = (0..<max(zip_get_num_entries(archive, 0), 0)).compactMap { zip_get_name(archive, zip_uint64_t($0), 0).map { String(cString: $0) } }
                throw ImageIOError(path: path, "no array '\(name)' in the archive (it holds \(present.isEmpty ? "nothing" : present.joined(separator: ", ")))")
            }
            guard stat.size <= UInt64(maxMemberBytes) else {
                throw ImageIOError(path: path, "array '\(name)' is \(stat.size) bytes, more than the \(maxMemberBytes) accepted")
            }
            guard let file = zip_fopen(archive, member, 0) else {
                throw ImageIOError(path: path, "cannot open '\(member)': \(String(cString: zip_strerror(archive)))")
            }
            var bytes = [UInt8](repeating: 0, count: Int(stat.size))
            let read = bytes.withUnsafeMutableBytes { zip_fread(file, $0.baseAddress!, stat.size) }
            zip_fclose(file)
            guard read == Int64(stat.size) else {
                throw ImageIOError(path: path, "'\(member)' is damaged: read \(max(read, 0)) of \(stat.size) bytes")
            }
            out[name] = try NumPyArray(npy: bytes, source: "\(path): \(member)")
        }
        return out
    }

    /// Writes `arrays` as an uncompressed `.npz` (as `numpy.savez` does), replacing `path`.
    public static func write(_ arrays: [(String, NumPyArray)], to path: String) throws {
        var error: Int32 = 0
        guard let archive = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &error) else {
            throw ImageIOError(path: path, "cannot create: \(zipErrorText(error))")
        }
        // libzip reads the buffers when the archive is closed: keep them alive until then.
        var buffers: [UnsafeMutableRawBufferPointer] = []
        defer { buffers.forEach { $0.deallocate() } }
        do {
            for (name, array) in arrays {
                let bytes = array.npyBytes
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
                buffer.copyBytes(from: bytes)
                buffers.append(buffer)
                guard let source = zip_source_buffer(archive, buffer.baseAddress, zip_uint64_t(bytes.count), 0) else {
                    throw ImageIOError(path: path, "cannot add '\(name).npy': \(String(cString: zip_strerror(archive)))")
                }
                let index = zip_file_add(archive, name + ".npy", source, zip_flags_t(ZIP_FL_OVERWRITE))
                guard index >= 0 else {
                    zip_source_free(source)
                    throw ImageIOError(path: path, "cannot add '\(name).npy': \(String(cString: zip_strerror(archive)))")
                }
                zip_set_file_compression(archive, zip_uint64_t(index), ZIP_CM_STORE, 0)
            }
        } catch {
            zip_discard(archive)
            throw error
        }
        guard zip_close(archive) == 0 else {
            let text = String(cString: zip_strerror(archive))
            zip_discard(archive)
            throw ImageIOError(path: path, "cannot write: \(text)")
        }
    }

    private static func zipErrorText(_ code: Int32) -> String {
        var e = zip_error_t()
        zip_error_init_with_code(&e, code)
        defer { zip_error_fini(&e) }
        return String(cString: zip_error_strerror(&e))
    }
}
