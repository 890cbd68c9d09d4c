import ImageFileFuzzing

/// Any bytes as an image file, seeded with WebPs (lossy, lossless with alpha, an EXIF chunk).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWebP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzImageFile(data, size)
    return 0
}
