import Foundation
@testable import ImageIO
import Testing

@Suite struct NumPyArrayTests {
    static let mu: [Double] = (0..<8).map { Double($0) / 4 - 1 }
    static let sigma: [Double] = (0..<64).map { (k: Int) -> Double in
        let (i, j) = (k / 8, k % 8)
        let diagonal: Double = i == j ? 1 : 0
        return 1 / Double(i + j + 1) + diagonal
    }

    @Test func readsAnArchiveWrittenByNumPy() throws {
        // numpy.savez(mu=float32 [8], sigma=float64 [8, 8]), as pytorch-fid saves statistics.
        let arrays = try NumPyArchive.read(Fixtures.path("golden/fid-stats-d8.npz"), names: ["mu", "sigma"])
        #expect(arrays["mu"] == NumPyArray(shape: [8], values: Self.mu))
        #expect(arrays["sigma"]!.shape == [8, 8])
        #expect(zip(arrays["sigma"]!.values, Self.sigma).allSatisfy { abs($0 - $1) < 1e-15 })
    }

    @Test func readsFortranOrderAndBigEndian() throws {
        // mu as >f8, sigma + ones above the diagonal in Fortran order.
        let arrays = try NumPyArchive.read(Fixtures.path("golden/fid-stats-d8-fortran.npz"), names: ["mu", "sigma"])
        #expect(arrays["mu"]!.values == Self.mu)
        let sigma = arrays["sigma"]!.values
        for i in 0..<8 {
            for j in 0..<8 {
                #expect(abs(sigma[i * 8 + j] - Self.sigma[i * 8 + j] - (j > i ? 1 : 0)) < 1e-15)
            }
        }
    }

    @Test func roundTripsThroughAnArchive() throws {
        let folder = try ScratchFolder()
        let path = folder.path + "/stats.npz"
        let a = NumPyArray(shape: [3], values: [1.5, -2, .pi]), b = NumPyArray(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        try NumPyArchive.write([("mu", a), ("sigma", b)], to: path)
        let back = try NumPyArchive.read(path, names: ["sigma", "mu"])
        #expect(back["mu"] == a && back["sigma"] == b)
        // The header is NumPy's: 64-byte aligned, ending in a newline.
        let npy = a.npyBytes
        let length = Int(npy[8]) | Int(npy[9]) << 8
        #expect((10 + length) % 64 == 0 && npy[9 + length] == 0x0A)
        #expect(String(decoding: npy[10..<(10 + length)], as: UTF8.self).hasPrefix("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }"))
    }

    static func npy(header: String, data: [UInt8] = [], version: UInt8 = 1) -> [UInt8] {
        let h = Array(header.utf8)
        return [0x93] + Array("NUMPY".utf8) + [version, 0, UInt8(h.count & 0xFF), UInt8(h.count >> 8)] + h + data
    }

    @Test func hostileHeadersAreErrorsNotAllocations() {
        func problem(_ bytes: [UInt8]) -> String? {
            do { _ = try NumPyArray(npy: bytes, source: "x.npy"); return nil } catch { return "\(error)" }
        }
        #expect(problem(Array("PK\u{3}\u{4}garbage".utf8)) == "x.npy: not a NumPy .npy array (no \\x93NUMPY magic)")
        var long = Self.npy(header: "{}")
        long[8] = 0xFF
        long[9] = 0xFF
        #expect(problem(long) == "x.npy: .npy header of 65535 bytes does not fit in the 12-byte file")
        #expect(problem(Self.npy(header: "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"))
                == "x.npy: shape [4294967296, 4294967296] is too large")
        #expect(problem(Self.npy(header: "{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }"))
                == "x.npy: shape [100000, 100000] is too large")
        #expect(problem(Self.npy(header: "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", data: [UInt8](repeating: 0, count: 16)))
                == "x.npy: shape [3] of '<f8' needs 24 bytes of data, the file holds 16")
        #expect(problem(Self.npy(header: "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", data: [UInt8](repeating: 0, count: 8)))
                == "x.npy: arrays of '<i8' are not supported (float32 or float64 are: '<f4', '<f8')")
        #expect(problem(Self.npy(header: "{'descr': '<f8', 'shape': (1,), }")) == "x.npy: .npy header has no 'fortran_order': {'descr': '<f8', 'shape': (1,), }")
        #expect(problem(Self.npy(header: "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }")) == "x.npy: .npy header's 'shape' holds '-1', not a size")
        #expect(problem(Self.npy(header: "{}", version: 9)) == "x.npy: .npy format version 9.0 is not supported (1 to 3 are)")
    }

    @Test func missingArraysAndFilesAreNamed() throws {
        let folder = try ScratchFolder()
        let path = folder.path + "/only-mu.npz"
        try NumPyArchive.write([("mu", NumPyArray(shape: [1], values: [0]))], to: path)
        #expect(throws: ImageIOError(path: path, "no array 'sigma' in the archive (it holds mu.npy)")) {
            try NumPyArchive.read(path, names: ["mu", "sigma"])
        }
        #expect(throws: ImageIOError(path: folder.path + "/none.npz", "no such file")) {
            try NumPyArchive.read(folder.path + "/none.npz", names: ["mu"])
        }
        let text = folder.path + "/text.npz"
        try Data("not a zip".utf8).write(to: URL(fileURLWithPath: text))
        #expect(throws: ImageIOError(path: text, "not a NumPy .npz archive (a ZIP file): Not a zip archive")) {
            try NumPyArchive.read(text, names: ["mu"])
        }
    }
}
