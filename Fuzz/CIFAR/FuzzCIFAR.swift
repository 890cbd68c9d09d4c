import FuzzSupport
import ImageIO

/// Any bytes as a CIFAR-10 batch, plain or gzip-compressed.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCIFAR(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let path = FuzzInput.write(data, size)
    guard let file = try? CIFAR10File(path: path) else { return 0 }
    _ = try? file.records(0..<file.count)
    if file.count > 1 { _ = try? file.records(1..<file.count) }
    _ = try? CIFAR10File.load([path])
    return 0
}
