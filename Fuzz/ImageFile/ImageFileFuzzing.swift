import ImageIO

/// The body the JPEG, WebP and HEIF harnesses share: any bytes as an image file, the way a photo
/// reaches GANFlow. The header, a full decode (whose size must be the header's), and a decode to
/// another channel count and a minimum size (chosen from the input's length, so the fuzzer reaches
/// scaled decoding, gray, CMYK, alpha and EXIF paths). A small pixel limit keeps each run short.
/// The harnesses differ in their seed corpora, which steer the fuzzer into one decoder or another.
public func fuzzImageFile(_ data: UnsafePointer<UInt8>, _ size: Int) {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let limit = 4_000_000
    guard let header = try? ImageFile.header(bytes: bytes, path: "fuzz") else { return }
    if let image = try? ImageFile.decode(bytes: bytes, path: "fuzz", options: ImageDecodeOptions(pixelLimit: limit)) {
        precondition(image.width == header.width && image.height == header.height,
                     "decoded \(image.width)x\(image.height), header said \(header)")
    }
    let side = 1 + size % 64
    _ = try? ImageFile.decode(bytes: bytes, path: "fuzz",
                              options: ImageDecodeOptions(channels: 1 + size % 4, pixelLimit: limit, atLeast: (side, side)))
}
