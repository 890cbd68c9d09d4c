import ImageFileFuzzing

/// Any bytes as an image file, seeded with HEIF files (HEIC with and without alpha, gray, turned
/// or mirrored by their boxes, AVIF at 4:4:4 and 4:2:0, a truncated one and one declaring
/// 100000x100000 pixels).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHEIF(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzImageFile(data, size)
    return 0
}
