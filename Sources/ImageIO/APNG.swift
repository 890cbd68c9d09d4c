import CZlib
import Foundation

/// Animated PNG (APNG) encoding: 8-bit frames of one size, written chunk by chunk with zlib.
///
/// The file is a PNG whose first frame is its ordinary image (`IDAT`), so a viewer without APNG
/// support shows that frame. `acTL` gives the frame count and loops; each frame has an `fcTL`
/// (size, offset 0, delay, no disposal, source blending) and its data in `IDAT` (frame 0) or
/// `fdAT` (a sequence number, then the same zlib stream). `fcTL` and `fdAT` share one sequence.
public enum APNG {
    /// Encodes `frames` (images of one size and channel count, values in [0, 1]) shown `delay`
    /// seconds each (as a fraction `numerator / denominator`), looping `loops` times (0: forever).
    public static func encode(_ frames: [Image], delay: (numerator: UInt16, denominator: UInt16) = (1, 10),
                              loops: Int = 0) throws -> [UInt8] {
        guard let first = frames.first else { throw ImageIOError(path: "APNG", "an animation needs at least one frame") }
        for (i, f) in frames.enumerated() where f.width != first.width || f.height != first.height || f.channels != first.channels {
            throw ImageIOError(path: "APNG", "frame \(i) is \(f.width)x\(f.height)x\(f.channels), frame 0 is \(first.width)x\(first.height)x\(first.channels)")
        }
        guard first.width > 0, first.height > 0 else { throw ImageIOError(path: "APNG", "frames must not be empty") }
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header = [UInt8]()
        header.appendBigEndian(UInt32(first.width))
        header.appendBigEndian(UInt32(first.height))
        header += [8, colorType(first.channels), 0, 0, 0]
        appendChunk("IHDR", header, to: &out)
        var control = [UInt8]()
        control.appendBigEndian(UInt32(frames.count))
        control.appendBigEndian(UInt32(loops))
        appendChunk("acTL", control, to: &out)
        var sequence: UInt32 = 0
        for (i, frame) in frames.enumerated() {
            var fc = [UInt8]()
            fc.appendBigEndian(sequence)
            fc.appendBigEndian(UInt32(first.width))
            fc.appendBigEndian(UInt32(first.height))
            fc.appendBigEndian(UInt32(0))
            fc.appendBigEndian(UInt32(0))
            fc.appendBigEndian(delay.numerator)
            fc.appendBigEndian(delay.denominator)
            fc += [0, 0]  // dispose: none; blend: source
            appendChunk("fcTL", fc, to: &out)
            sequence += 1
            let data = try deflate(scanlines(frame))
            if i == 0 {
                appendChunk("IDAT", data, to: &out)
            } else {
                var fd = [UInt8]()
                fd.reserveCapacity(data.count + 4)
                fd.appendBigEndian(sequence)
                fd += data
                appendChunk("fdAT", fd, to: &out)
                sequence += 1
            }
        }
        appendChunk("IEND", [], to: &out)
        return out
    }

    /// Encodes `frames` (see `encode`) and writes the file atomically enough for a result: whole or not at all.
    public static func write(_ frames: [Image], to path: String, delay: (numerator: UInt16, denominator: UInt16) = (1, 10),
                             loops: Int = 0) throws {
        let bytes = try encode(frames, delay: delay, loops: loops)
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw ImageIOError(path: path, "cannot write: \(error.localizedDescription)")
        }
    }

    static func colorType(_ channels: Int) -> UInt8 {
        switch channels {
        case 1: 0
        case 2: 4
        case 3: 2
        default: 6
        }
    }

    /// The image's rows, each after a filter byte of 0 (none), as 8-bit codes pixel after pixel.
    static func scanlines(_ image: Image) -> [UInt8] {
        let (w, h, c) = (image.width, image.height, image.channels)
        var out = [UInt8](repeating: 0, count: h * (1 + w * c))
        image.pixels.withUnsafeBufferPointer { p in
            let plane = w * h
            for y in 0..<h {
                let row = y * (1 + w * c) + 1
                for x in 0..<w {
                    for ch in 0..<c {
                        out[row + x * c + ch] = PixelRange.unit.byte(p[ch * plane + y * w + x])
                    }
                }
            }
        }
        return out
    }

    static func deflate(_ bytes: [UInt8]) throws -> [UInt8] {
        var size = compressBound(uLong(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(size))
        let status = out.withUnsafeMutableBufferPointer { o in
            bytes.withUnsafeBufferPointer { i in compress2(o.baseAddress, &size, i.baseAddress, uLong(bytes.count), 9) }
        }
        guard status == Z_OK else { throw ImageIOError(path: "APNG", "zlib compress2 failed with status \(status)") }
        out.removeLast(out.count - Int(size))
        return out
    }

    /// Length, type, data and the CRC-32 of type and data.
    static func appendChunk(_ type: String, _ data: [UInt8], to out: inout [UInt8]) {
        out.appendBigEndian(UInt32(data.count))
        let typeBytes = Array(type.utf8)
        var crc = crc32(0, typeBytes, 4)
        // zlib's crc32 with a null buffer returns its initial value, so skip empty data.
        if !data.isEmpty { crc = data.withUnsafeBufferPointer { crc32(crc, $0.baseAddress, uInt($0.count)) } }
        out += typeBytes
        out += data
        out.appendBigEndian(UInt32(crc))
    }
}

extension [UInt8] {
    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }
}
