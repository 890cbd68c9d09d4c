import FuzzSupport
import ImageIO

/// Any bytes as an image file, the way a WebP file reaches GANFlow: the header (with the RIFF chunk
/// walk for EXIF), a full decode, and one to another channel count (chosen from the input's length,
/// so alpha is kept or dropped). A small pixel limit keeps each run short.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWebP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let limit = 4_000_000
    guard let header = try? ImageFile.header(bytes: bytes, path: "fuzz") else { return 0 }
    if let image = try? ImageFile.decode(bytes: bytes, path: "fuzz", options: ImageDecodeOptions(pixelLimit: limit)) {
        precondition(image.width == header.width && image.height == header.height,
                     "decoded \(image.width)x\(image.height), header said \(header)")
    }
    let side = 1 + size % 64
    _ = try? ImageFile.decode(bytes: bytes, path: "fuzz",
                              options: ImageDecodeOptions(channels: 1 + size % 4, pixelLimit: limit, atLeast: (side, side)))
    return 0
}
