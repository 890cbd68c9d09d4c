import TensorRuntime

/// The range pixel values are mapped to in a tensor.
public enum PixelRange: String, Sendable, Codable {
    /// [0, 1], as decoded.
    case unit
    /// [-1, 1], as a tanh generator produces: `2 * x - 1`.
    case symmetric

    /// Maps a [0, 1] value into this range.
    @inline(__always)
    public func fromUnit(_ x: Float) -> Float { self == .unit ? x : 2 * x - 1 }

    /// Maps a value in this range back to [0, 1] (not clamped).
    @inline(__always)
    public func toUnit(_ x: Float) -> Float { self == .unit ? x : (x + 1) / 2 }

    /// A value in this range as an 8-bit code: clamped to [0, 1] once mapped there, times 255,
    /// rounded to the nearest code (what a PNG of it holds).
    @inlinable
    public func byte(_ x: Float) -> UInt8 { UInt8((min(max(toUnit(x), 0), 1) * 255).rounded()) }
}

extension Image {
    /// This image as a `[C, H, W]` tensor in `range`.
    public func tensor(range: PixelRange) -> Tensor {
        let out = Tensor(uninitialized: [channels, height, width])
        for i in 0..<pixels.count { out.data[i] = range.fromUnit(pixels[i]) }
        return out
    }

    /// A tensor of `count` byte images (`[N, C, H, W]` from bytes stored record after record in CHW
    /// order, as IDX and CIFAR-10 hold them), mapped from `byte / 255` into `range`.
    public static func tensor(bytes: [UInt8], shape: [Int], range: PixelRange) throws -> Tensor {
        var n = 1
        for d in shape { n *= d }
        guard n == bytes.count else {
            throw TensorError("shape \(describe(shape)) holds \(n) values, but \(bytes.count) bytes were given")
        }
        // A table keeps the conversion exact (byte / 255, then the range map) and cheap.
        var table = [Float](repeating: 0, count: 256)
        for b in 0..<256 { table[b] = range.fromUnit(Float(b) / 255) }
        let out = Tensor(uninitialized: shape)
        let dst = out.data
        table.withUnsafeBufferPointer { t in
            bytes.withUnsafeBufferPointer { src in
                for i in 0..<n { dst[i] = t[Int(src[i])] }
            }
        }
        return out
    }
}
