import FuzzSupport
import ImageIO

/// Any bytes as a PNG: the header, a read at the file's own channels and one converted to another
/// channel count (chosen from the input's length, so the fuzzer reaches every conversion).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let path = FuzzInput.write(data, size)
    guard let info = try? PNG.info(path) else { return 0 }
    if let image = try? PNG.read(path) {
        precondition(image.width == info.width && image.height == info.height && image.channels == info.channels,
                     "read \(image.width)x\(image.height)x\(image.channels), header said \(info)")
    }
    _ = try? PNG.read(path, channels: 1 + size % 4)
    return 0
}
