import CPNG
import Dispatch
import Synchronization
import TensorRuntime

extension PNG {
    /// Writes 8-bit samples stored pixel after pixel (gray, gray+alpha, RGB or RGBA by `channels`)
    /// to `path`.
    public static func write(bytes: UnsafeRawBufferPointer, width: Int, height: Int, channels: Int, to path: String) throws {
        precondition((1...4).contains(channels) && bytes.count >= width * height * channels, "PNG bytes for \(width)x\(height)x\(channels)")
        let png = allocate()
        defer { release(png) }
        png.pointee.width = UInt32(width)
        png.pointee.height = UInt32(height)
        png.pointee.format = format(channels: channels, sixteen: false)
        try check(png_image_write_to_file(png, path, 0, bytes.baseAddress, Int32(width * channels), nil), png, path)
    }

    /// Writes every image of an `[N, C, H, W]` batch (C of 1 to 4, values in `range`) as its own
    /// 8-bit PNG at `path(i)`, `workers` files at a time.
    ///
    /// Samples are mapped to [0, 1], clamped and rounded as `write(_:to:)` does, straight from the
    /// tensor into one reused byte buffer per worker, so the memory used does not depend on N.
    /// The first error (in index order of the failed files) is thrown after all workers stop.
    public static func writeBatch(_ batch: Tensor, range: PixelRange, workers: Int = 2, path: @Sendable (Int) -> String) throws {
        let s = batch.shape
        guard s.count == 4, (1...4).contains(s[1]) else {
            throw TensorError("a batch of images must be [N, C, H, W] with 1 to 4 channels, not \(describe(s))")
        }
        let (n, c, h, w) = (s[0], s[1], s[2], s[3])
        guard n > 0 else { return }
        let images = batch.isContiguous ? batch : batch.copy()
        let source = SendablePointer(images.data)
        let failure = Mutex<(index: Int, error: any Error)?>(nil)
        let lanes = max(1, min(workers, n))
        DispatchQueue.concurrentPerform(iterations: lanes) { lane in
            let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: c * h * w, alignment: 16)
            defer { bytes.deallocate() }
            var i = lane
            while i < n {
                interleaveBytes(source.pointer + i * c * h * w, channels: c, plane: h * w, range: range, into: bytes)
                do {
                    try write(bytes: UnsafeRawBufferPointer(bytes), width: w, height: h, channels: c, to: path(i))
                } catch {
                    failure.withLock { if $0 == nil || $0!.index > i { $0 = (i, error) } }
                    return
                }
                i += lanes
            }
        }
        _ = images
        if let (_, error) = failure.withLock({ $0 }) { throw error }
    }

    /// Planar samples in `range` to interleaved 8-bit codes: clamp to [0, 1], times 255, rounded.
    static func interleaveBytes(_ planar: UnsafePointer<Float>, channels c: Int, plane n: Int, range: PixelRange,
                                into out: UnsafeMutableRawBufferPointer) {
        let dst = out.bindMemory(to: UInt8.self)
        for ch in 0..<c {
            let p = planar + ch * n
            for i in 0..<n {
                dst[i * c + ch] = range.byte(p[i])
            }
        }
    }
}

/// A pointer handed to `concurrentPerform`'s workers, which only read from it or write disjoint
/// parts (each task its own).
public struct SendablePointer: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public init(_ pointer: UnsafeMutablePointer<Float>) { self.pointer = pointer }
}
