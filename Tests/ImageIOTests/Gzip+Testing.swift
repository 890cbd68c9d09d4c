import CZlib
import Foundation
@testable import ImageIO

/// Writes `data` gzip-compressed to `path` with zlib.
func writeGzip(_ data: Data, to path: String) throws {
    guard let file = gzopen(path, "wb") else { throw ImageIOError(path: path, "gzopen failed") }
    let written = data.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
    gzclose(file)
    guard written == data.count else { throw ImageIOError(path: path, "gzwrite wrote \(written) of \(data.count)") }
}
