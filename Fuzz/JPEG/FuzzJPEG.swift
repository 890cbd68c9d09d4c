import FuzzSupport
import ImageIO

/// Any bytes as an image file, the way a JPEG reaches GANFlow: the header, a full decode, and a
/// scaled decode to another channel count (chosen from the input's length, so the fuzzer reaches
/// the 1/2 to 1/8 scalings, gray, CMYK and EXIF paths). A small pixel limit keeps each run short.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJPEG(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
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
