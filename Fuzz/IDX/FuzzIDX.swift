import FuzzSupport
import ImageIO

/// Any bytes as an IDX file, plain or gzip-compressed (zlib decides from the first bytes).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let path = FuzzInput.write(data, size)
    guard let file = try? IDXFile(path: path) else { return 0 }
    _ = try? file.validate()
    _ = try? file.records(0..<min(file.count, 3))
    if file.count > 1 { _ = try? file.records((file.count - 1)..<file.count) }
    _ = try? file.readAll()
    _ = try? IDXFile.loadImages(path)
    _ = try? IDXFile.loadLabels(path)
    return 0
}
