import Foundation
import Testing
@testable import TensorRuntime

/// The bytes of a safetensors file with `header` as its JSON and `buffer` after it.
private func file(_ header: String, _ buffer: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    let json = Array(header.utf8)
    var out: [UInt8] = []
    withUnsafeBytes(of: (declaredLength ?? UInt64(json.count)).littleEndian) { out.append(contentsOf: $0) }
    return out + json + buffer
}

private func decode(_ bytes: [UInt8]) throws -> SafeTensorsArchive {
    try SafeTensorsArchive(decoding: bytes, source: "bad.safetensors")
}

private func temporaryDirectory() throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("safetensors-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

@Suite struct SafeTensorsTests {
    @Test func roundTripKeepsValuesShapesIntegersAndMetadata() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = PhiloxRandom(seed: 3)
        let weight = Tensor(randomNormal: [4, 3, 2], using: &rng)
        var archive = SafeTensorsArchive(metadata: ["step": "120", "quote\"d": "line\nbreak é"])
        archive.set("g.conv.weight", weight)
        archive.set("g.bn.num_batches_tracked", integer: 42)
        archive.set("counts", integers: [-1, Int64.max, 0, 5, 6, 7], shape: [2, 3])
        archive.set("empty", Tensor(zeros: [0, 5]))
        archive.set("scalar", Tensor(2.5))
        let path = dir + "/model.safetensors"
        try archive.write(to: path)

        let back = try SafeTensorsArchive(contentsOf: path)
        #expect(back.names == ["g.conv.weight", "g.bn.num_batches_tracked", "counts", "empty", "scalar"])
        #expect(back.metadata == archive.metadata)
        let w = try back.tensor("g.conv.weight")
        #expect(w.shape == [4, 3, 2])
        #expect(w.scalars == weight.scalars)
        #expect(try back.integers("g.bn.num_batches_tracked") == [42])
        #expect(back.entry("g.bn.num_batches_tracked")?.shape == [])
        #expect(try back.integers("counts") == [-1, Int64.max, 0, 5, 6, 7])
        #expect(try back.tensor("counts").scalars == [-1, Float(Int64.max), 0, 5, 6, 7])
        #expect(try back.tensor("empty").shape == [0, 5])
        #expect(try back.tensor("scalar").scalars == [2.5])
        #expect(back.entry("scalar")?.shape == [])

        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(Array(bytes) == archive.encoded())
        #expect(bytes.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) } % 8 == 0)
    }

    @Test func readsTheFileWrittenByPyTorch() throws {
        let archive = try SafeTensorsArchive(contentsOf: packageRoot.appendingPathComponent("Fixtures/golden/tiny.safetensors").path)
        #expect(archive.metadata == ["format": "pt", "note": "GANFlow golden fixture"])
        #expect(Set(archive.names) == ["conv.weight", "conv.bias", "bn.num_batches_tracked", "counts", "half.exact",
                                       "half.rounded", "bf16.exact", "bf16.rounded", "empty"])
        let weight = try archive.tensor("conv.weight")
        #expect(weight.shape == [2, 3, 2, 2])
        #expect(weight.scalars == (0..<24).map { Float($0) * 0.25 - 3 })
        #expect(try archive.tensor("conv.bias").scalars == [0.5, -1.5])
        #expect(try archive.integers("bn.num_batches_tracked") == [7])
        #expect(archive.entry("bn.num_batches_tracked")?.shape == [])
        #expect(try archive.integers("counts") == [-3, 0, 1 << 40])
        #expect(archive.entry("counts")?.shape == [1, 3])
        #expect(archive.entry("half.exact")?.dtype == .f16)
        #expect(try archive.tensor("half.exact").scalars == [1, -2.5, 0.0009765625, 65504, 0x1p-24, -.infinity])
        #expect(try archive.tensor("half.rounded").scalars == [0.0999755859375])
        #expect(archive.entry("bf16.exact")?.dtype == .bf16)
        #expect(try archive.tensor("bf16.exact").scalars == [1, -0.375, 256, 3.00405527047391e+38])
        #expect(try archive.tensor("bf16.rounded").scalars == [0.10009765625])
        #expect(try archive.tensor("empty").shape == [0, 3])
    }

    /// Found by the SafeTensors fuzz harness: F16 and BF16 entries were re-written under their
    /// original dtype but with 4-byte floats, so re-saving a file read from PyTorch made a file that
    /// no reader accepts. Values read from any float type are written back as F32.
    @Test func reencodingHalfPrecisionEntriesWritesThemAsF32() throws {
        let original = try SafeTensorsArchive(contentsOf: packageRoot.appendingPathComponent("Fixtures/golden/tiny.safetensors").path)
        let again = try SafeTensorsArchive(decoding: original.encoded(), source: "re-encoded")
        #expect(again.names == original.names)
        for name in ["half.exact", "half.rounded", "bf16.exact", "bf16.rounded"] {
            #expect(again.entry(name)?.dtype == .f32, "\(name)")
            #expect(try again.tensor(name).scalars == original.tensor(name).scalars, "\(name)")
        }
        #expect(try again.integers("counts") == [-3, 0, 1 << 40])
        let seed = packageRoot.appendingPathComponent("Fixtures/fuzz/SafeTensors/mixed-dtypes-reencode.safetensors").path
        let mixed = try SafeTensorsArchive(contentsOf: seed)
        #expect(try SafeTensorsArchive(decoding: mixed.encoded(), source: "re-encoded").names == mixed.names)
    }

    /// A flipped bit in a tensor leaves a file whose layout is valid; the data checksum written in
    /// the metadata finds it, wherever it is, and names the file.
    @Test func aFlippedBitInTheTensorDataIsRefused() throws {
        var rng = PhiloxRandom(seed: 5)
        var archive = SafeTensorsArchive(metadata: ["note": "kept"])
        archive.set("w", Tensor(randomNormal: [3, 5], using: &rng))
        archive.set("empty", Tensor(zeros: [0, 2]))
        archive.set("n", integers: [1, -2, 3], shape: [3])
        let bytes = archive.encoded()
        let intact = try decode(bytes)
        #expect(intact.metadata == ["note": "kept"], "the checksum is not shown as metadata")
        let dataStart = 8 + bytes.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        #expect(bytes.count - dataStart == 15 * 4 + 3 * 8)
        for offset in dataStart..<bytes.count {
            for bit in [0, 3, 7] {
                var flipped = bytes
                flipped[offset] ^= 1 << bit
                #expect(throws: SafeTensorsError.self, "byte \(offset) bit \(bit)") { try decode(flipped) }
                do {
                    _ = try decode(flipped)
                } catch {
                    #expect("\(error)".hasPrefix("bad.safetensors: the tensor data does not match its checksum ("))
                    #expect("\(error)".hasSuffix("): the file is corrupt"))
                }
            }
        }
    }

    @Test func halfConversionMatchesFloat16ForEveryBitPattern() {
        #if arch(x86_64) || arch(arm64)
        for bits in 0...UInt16.max {
            let expected = Float(Float16(bitPattern: bits))
            let got = floatFromHalf(bits)
            #expect(got.bitPattern == expected.bitPattern || (got.isNaN && expected.isNaN), "bits \(bits)")
        }
        #endif
    }

    @Test func missingAndMistypedEntriesNameTheTensor() throws {
        var archive = SafeTensorsArchive(source: "ckpt.safetensors")
        archive.set("w", Tensor(zeros: [2]))
        #expect(throws: SafeTensorsError(file: "ckpt.safetensors", tensor: "v", message: "not found")) { try archive.tensor("v") }
        #expect(throws: SafeTensorsError(file: "ckpt.safetensors", tensor: "w", message: "is F32, not I64")) { try archive.integers("w") }
        #expect("\(SafeTensorsError(file: "a.st", tensor: "w", message: "not found"))" == "a.st: tensor 'w': not found")
    }

    @Test func missingFileIsAnError() {
        #expect(throws: FileError(path: "/nonexistent/x.safetensors", message: "cannot open: No such file or directory")) {
            try SafeTensorsArchive(contentsOf: "/nonexistent/x.safetensors")
        }
    }

    static let malformed: [(String, [UInt8], String)] = [
        ("short", [1, 0, 0], "bad.safetensors: file is 3 bytes, shorter than the 8-byte header length"),
        ("length beyond file", file(#"{}"#, declaredLength: 1000),
         "bad.safetensors: header length 1000 exceeds the 2 bytes after the length field"),
        ("huge length", file(#"{}"#, declaredLength: UInt64.max),
         "bad.safetensors: header length 18446744073709551615 exceeds the 2 bytes after the length field"),
        ("invalid JSON", file(#"{"w": {"dtype": "F32",}}"#),
         "bad.safetensors: header is not valid JSON: unexpected '}', expected a key in double quotes at byte 22"),
        ("trailing garbage", file(#"{} x"#), "bad.safetensors: header is not valid JSON: unexpected 'x' after the end of the document at byte 3"),
        ("not UTF-8", file("{\"\u{FF}\": 1}").map { $0 == 0xC3 ? 0xFF : $0 },
         "bad.safetensors: header is not valid JSON: string is not valid UTF-8 at byte 5"),
        ("not an object", file(#"[1, 2]"#), "bad.safetensors: header is an array, not a JSON object"),
        ("offsets beyond buffer", file(#"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}"#, [UInt8](repeating: 0, count: 8)),
         "bad.safetensors: tensor 'w': data_offsets [0, 16] extend beyond the 8-byte data buffer"),
        ("reversed offsets", file(#"{"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}}"#, [UInt8](repeating: 0, count: 8)),
         "bad.safetensors: tensor 'w': data_offsets [8, 4] end before they begin"),
        ("negative offset", file(#"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}"#),
         "bad.safetensors: tensor 'w': 'data_offsets' must be two non-negative integers [begin, end]"),
        ("overlap", file(#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#,
                         [UInt8](repeating: 0, count: 12)),
         "bad.safetensors: tensor 'b': data_offsets [4, 12] overlap tensor 'a' at [0, 8]"),
        ("gap", file(#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}"#,
                     [UInt8](repeating: 0, count: 12)),
         "bad.safetensors: tensor 'b': data_offsets [8, 12] leave bytes 4..<8 unused after tensor 'a'"),
        ("gap at start", file(#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#, [UInt8](repeating: 0, count: 8)),
         "bad.safetensors: tensor 'a': data_offsets [4, 8] leave bytes 0..<4 unused at the start of the data buffer"),
        ("uncovered tail", file(#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#, [UInt8](repeating: 0, count: 9)),
         "bad.safetensors: data buffer has 9 bytes, but the tensors cover only 4"),
        ("size disagrees", file(#"{"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}}"#, [UInt8](repeating: 0, count: 20)),
         "bad.safetensors: tensor 'w': shape [2, 3] of F32 needs 24 bytes, but data_offsets [0, 20] hold 20"),
        ("half size disagrees", file(#"{"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 8]}}"#, [UInt8](repeating: 0, count: 8)),
         "bad.safetensors: tensor 'w': shape [3] of BF16 needs 6 bytes, but data_offsets [0, 8] hold 8"),
        ("negative dim", file(#"{"w": {"dtype": "F32", "shape": [2, -1], "data_offsets": [0, 0]}}"#),
         "bad.safetensors: tensor 'w': shape [2, -1] has a negative dimension"),
        ("overflowing shape", file(#"{"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}}"#),
         "bad.safetensors: tensor 'w': shape [4294967296, 4294967296] is too large"),
        ("fractional dim", file(#"{"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 0]}}"#),
         "bad.safetensors: tensor 'w': 'shape' holds 1.5, not an integer"),
        ("duplicate name", file(#"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#,
                                [UInt8](repeating: 0, count: 8)),
         "bad.safetensors: tensor 'w': appears twice in the header"),
        ("unsupported dtype", file(#"{"w": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}}"#, [UInt8](repeating: 0, count: 8)),
         "bad.safetensors: tensor 'w': unsupported dtype 'F64' (supported: F32, F16, BF16, I64)"),
        ("missing shape", file(#"{"w": {"dtype": "F32", "data_offsets": [0, 4]}}"#, [UInt8](repeating: 0, count: 4)),
         "bad.safetensors: tensor 'w': missing 'shape'"),
        ("entry not object", file(#"{"w": "F32"}"#), "bad.safetensors: tensor 'w': entry is a string, not an object"),
        ("metadata not strings", file(#"{"__metadata__": {"step": 5}}"#),
         "bad.safetensors: '__metadata__' entry 'step' is a number, not a string"),
        ("deep nesting", file(String(repeating: "[", count: 100)),
         "bad.safetensors: header is not valid JSON: nesting deeper than 64 levels at byte 64"),
    ]

    @Test(arguments: malformed.indices)
    func malformedFileIsRejectedWithExactMessage(_ index: Int) {
        let (label, bytes, message) = Self.malformed[index]
        do {
            _ = try decode(bytes)
            Issue.record("\(label): decoded without error")
        } catch {
            #expect("\(error)" == message, "\(label)")
        }
    }

    @Test func truncatedCopiesOfAValidFileAreAllRejected() throws {
        var archive = SafeTensorsArchive(metadata: ["k": "v"])
        archive.set("a", Tensor(repeating: 1, shape: [3]))
        archive.set("n", integer: 9)
        let bytes = archive.encoded()
        #expect(try decode(bytes).names == ["a", "n"])
        for length in 0..<bytes.count {
            #expect(throws: SafeTensorsError.self) { try decode(Array(bytes.prefix(length))) }
        }
    }

    @Test func atomicWriteReplacesTheTargetAndLeavesNoTemporaryFiles() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/out.bin"
        try AtomicFile.write([1, 2, 3], to: path)
        try AtomicFile.write([4, 5], to: path)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: path))) == [4, 5])

        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try AtomicFile.write(to: path) { writer in
                try [UInt8](repeating: 9, count: 100).withUnsafeBytes { try writer.write($0) }
                throw Boom()
            }
        }
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: path))) == [4, 5])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["out.bin"])
    }

    /// A run SIGKILLed inside a checkpoint write leaves its temporary file; the next run removes
    /// those of dead processes only (Scripts/killtest.sh found them piling up, 24 MB each).
    @Test func abandonedTemporariesOfDeadWritersAreRemoved() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // No process has this id: Linux's pid_max is at most 2^22.
        let dead = dir + "/.step-00000004.safetensors.tmp-2147483600-0-17"
        let live = dir + "/.step-00000006.safetensors.tmp-\(getpid())-0-18"
        let other = dir + "/.hidden"
        let kept = dir + "/step-00000002.safetensors"
        for path in [dead, live, other, kept] { #expect(FileManager.default.createFile(atPath: path, contents: Data([1]))) }
        #expect(AtomicFile.removeAbandonedTemporaries(in: dir) == [dead])
        #expect(!FileManager.default.fileExists(atPath: dead))
        for path in [live, other, kept] { #expect(FileManager.default.fileExists(atPath: path)) }
        #expect(AtomicFile.removeAbandonedTemporaries(in: dir + "/missing").isEmpty)
    }

    /// A second Ctrl-C exits without unwinding; it first removes the temporary file of the write
    /// under way, and the target stays as it was.
    @Test func temporariesInProgressAreRemovedForAnImmediateExit() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/step-00000002.safetensors"
        try AtomicFile.write([1, 2], to: path)
        #expect(throws: FileError.self) {
            try AtomicFile.write(to: path) { writer in
                try [UInt8](repeating: 9, count: 100).withUnsafeBytes { try writer.write($0) }
                #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }.count == 1)
                AtomicFile.removeTemporariesInProgress()
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["step-00000002.safetensors"])
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: path))) == [1, 2])
    }

    @Test func atomicWriteIntoAMissingDirectoryFailsNamingTheFile() {
        #expect(throws: FileError(path: "/nonexistent-dir/out.bin", message: "cannot create a temporary file: No such file or directory")) {
            try AtomicFile.write([1], to: "/nonexistent-dir/out.bin")
        }
    }
}
