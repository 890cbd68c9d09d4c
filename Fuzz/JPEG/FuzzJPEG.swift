import ImageFileFuzzing

/// Any bytes as an image file, seeded with JPEGs (baseline, progressive, gray, CMYK, YCCK, EXIF).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJPEG(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzImageFile(data, size)
    return 0
}
