import CZlib
import Foundation
import Testing
import TensorRuntime
@testable import ImageIO

@Suite struct APNGTests {
    /// Chunks of a PNG file: type, data, and whether the stored CRC matches type and data.
    func chunks(_ bytes: [UInt8]) -> [(type: String, data: [UInt8], crcOK: Bool)] {
        var out: [(String, [UInt8], Bool)] = []
        var i = 8
        func u32(_ at: Int) -> UInt32 { bytes[at..<(at + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
        while i + 12 <= bytes.count {
            let length = Int(u32(i))
            let type = Array(bytes[(i + 4)..<(i + 8)])
            let data = Array(bytes[(i + 8)..<(i + 8 + length)])
            var crc = crc32(0, type, 4)
            if !data.isEmpty { crc = crc32(crc, data, uInt(data.count)) }
            out.append((String(decoding: type, as: UTF8.self), data, UInt32(crc) == u32(i + 8 + length)))
            i += 12 + length
        }
        return out
    }

    func inflate(_ data: [UInt8], size: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size)
        var length = uLongf(size)
        let status = uncompress(&out, &length, data, uLong(data.count))
        #expect(status == Z_OK && Int(length) == size)
        return out
    }

    func frame(_ value: Float, width: Int = 3, height: Int = 2, channels: Int = 1) -> Image {
        Image(width: width, height: height, channels: channels,
              pixels: (0..<(width * height * channels)).map { Float($0 % 5) / 4 * value })
    }

    @Test func framesAreWrittenAsAcTLFcTLAndFdATChunks() throws {
        let frames = [frame(1), frame(0.5), frame(0.25)]
        let bytes = try APNG.encode(frames, delay: (1, 20), loops: 0)
        #expect(Array(bytes.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        let found = chunks(bytes)
        #expect(found.map(\.type) == ["IHDR", "acTL", "fcTL", "IDAT", "fcTL", "fdAT", "fcTL", "fdAT", "IEND"])
        #expect(found.allSatisfy { $0.crcOK })
        #expect(found[1].data == [0, 0, 0, 3, 0, 0, 0, 0])  // 3 frames, loop forever
        // fcTL and fdAT share one sequence: 0 (fcTL), 1 (fcTL), 2 (fdAT), 3 (fcTL), 4 (fdAT).
        let sequence = found.filter { $0.type == "fcTL" || $0.type == "fdAT" }.map { $0.data.prefix(4).reduce(0) { $0 << 8 | Int($1) } }
        #expect(sequence == [0, 1, 2, 3, 4])
        // fcTL: width 3, height 2, offsets 0, delay 1/20 s, no disposal, source blending.
        #expect(Array(found[2].data[4...]) == [0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 20, 0, 0])
        // Each frame's data inflates to its rows, each after filter byte 0.
        let datas = [found[3].data, Array(found[5].data.dropFirst(4)), Array(found[7].data.dropFirst(4))]
        for (f, data) in zip(frames, datas) {
            let rows = inflate(data, size: 2 * (1 + 3))
            let codes = f.pixels.map { UInt8(($0 * 255).rounded()) }
            let expected: [UInt8] = [0] + Array(codes[0..<3]) + [0] + Array(codes[3..<6])
            #expect(rows == expected)
        }
    }

    @Test func libpngReadsTheFirstFrame() throws {
        let scratch = try ScratchFolder()
        let path = scratch.file("a.png")
        let frames = [frame(1, channels: 3), frame(0.5, channels: 3)]
        try APNG.write(frames, to: path)
        let read = try PNG.read(path)
        #expect(read.channels == 3 && read.width == 3 && read.height == 2)
        #expect(read.pixels == frames[0].pixels.map { Float(UInt8(($0 * 255).rounded())) / 255 })
    }

    @Test func mismatchedFramesAreRefused() {
        #expect(imageIOError { _ = try APNG.encode([frame(1), frame(1, width: 4)]) }?.message
                == "APNG: frame 1 is 4x2x1, frame 0 is 3x2x1")
        #expect(imageIOError { _ = try APNG.encode([]) }?.message == "APNG: an animation needs at least one frame")
    }

    @Test func batchesAreWrittenAsTheSingleImageWriterWritesThem() throws {
        let scratch = try ScratchFolder()
        var rng = PhiloxRandom(seed: 5)
        let batch = Tensor(randomNormal: [7, 3, 5, 4], std: 0.8, using: &rng)
        try PNG.writeBatch(batch, range: .symmetric, workers: 3) { [path = scratch.path] in "\(path)/b\($0).png" }
        for i in 0..<7 {
            var image = try Image(batch, index: i)
            image.pixels = image.pixels.map { PixelRange.symmetric.toUnit($0) }
            try PNG.write(image, to: scratch.file("s\(i).png"))
            #expect(try Data(contentsOf: URL(fileURLWithPath: scratch.file("b\(i).png"))) == Data(contentsOf: URL(fileURLWithPath: scratch.file("s\(i).png"))))
        }
        #expect(imageIOError { try PNG.writeBatch(batch, range: .symmetric) { _ in "/nonexistent/x.png" } }?.path == "/nonexistent/x.png")
    }
}
