import Glibc

/// The formats `ImageFile` decodes, recognised by their first bytes (never by a file's name).
public enum ImageFormat: String, Sendable, CaseIterable {
    case png = "PNG"
    case jpeg = "JPEG"
    case webp = "WebP"
    /// HEIF: HEIC (HEVC-coded, phones' photos) and AVIF (AV1-coded).
    case heif = "HEIF"

    /// The format whose signature `bytes` starts with, or nil.
    public init?(sniffing bytes: UnsafeRawBufferPointer) {
        func starts(_ prefix: [UInt8], at offset: Int = 0) -> Bool {
            bytes.count >= offset + prefix.count && zip(bytes[offset..<(offset + prefix.count)], prefix).allSatisfy { $0 == $1 }
        }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            self = .png
        } else if starts([0xFF, 0xD8, 0xFF]) {
            self = .jpeg
        } else if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) {
            self = .webp
        } else if HEIF.sniff(bytes) {
            self = .heif
        } else {
            return nil
        }
    }
}

/// How to decode an image file.
public struct ImageDecodeOptions: Sendable, Equatable {
    /// Channels of the decoded image (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA); nil keeps the file's own.
    public var channels: Int?
    /// The largest width x height accepted, checked against the header before any pixel buffer exists.
    public var pixelLimit: Int
    /// When set, a JPEG may be decoded at 1/2, 1/4 or 1/8 of its size (libjpeg-turbo's scaled
    /// decoding) as long as the result, once oriented, is at least this wide and this high.
    public var atLeast: (width: Int, height: Int)?

    public init(channels: Int? = nil, pixelLimit: Int = ImageFile.defaultPixelLimit, atLeast: (width: Int, height: Int)? = nil) {
        self.channels = channels
        self.pixelLimit = pixelLimit
        self.atLeast = atLeast
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.channels == b.channels && a.pixelLimit == b.pixelLimit && a.atLeast?.width == b.atLeast?.width && a.atLeast?.height == b.atLeast?.height
    }
}

/// What an image file's header says.
public struct ImageHeader: Equatable, Sendable {
    public var format: ImageFormat
    /// Size once oriented (EXIF orientations 5 to 8 swap the stored width and height).
    public var width: Int
    public var height: Int
    /// Channels the file decodes to by default: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
    public var channels: Int
}

/// The one way GANFlow reads an image file: PNG (libpng), JPEG (libjpeg-turbo), WebP (libwebp) or
/// HEIF, that is HEIC and AVIF (libheif), chosen by the file's first bytes.
///
/// JPEG and WebP files are turned upright by their EXIF orientation, as Pillow's
/// `ImageOps.exif_transpose` does; HEIF files by their container's rotation and mirroring. Every format's declared size is checked against a pixel limit
/// (as Pillow's `MAX_IMAGE_PIXELS`) before a pixel buffer is allocated, so a 1 kB file that
/// declares 100000x100000 pixels is refused, not decoded.
public enum ImageFile {
    /// Pillow's `Image.MAX_IMAGE_PIXELS` (1024 * 1024 * 1024 / 4 / 3): about 9500 x 9500.
    public static let defaultPixelLimit = 89_478_485

    /// Extensions of the files a folder scan takes for images by default (lower case, no dot).
    public static let defaultExtensions = ["jpg", "jpeg", "jpe", "jfif", "png", "webp", "heic", "heif", "hif", "avif"]

    /// Reads and decodes `path`.
    public static func read(path: String, options: ImageDecodeOptions = ImageDecodeOptions()) throws -> Image {
        try decode(bytes: try contents(of: path), path: path, options: options)
    }

    /// Decodes the file held in `bytes`; `path` names it in errors.
    public static func decode(bytes: [UInt8], path: String, options: ImageDecodeOptions = ImageDecodeOptions()) throws -> Image {
        if let c = options.channels, !(1...4).contains(c) {
            throw ImageIOError(path: path, "cannot read as \(c) channels: images have 1 to 4")
        }
        switch try format(of: bytes, path: path) {
        case .png:
            return try PNG.decode(bytes, path: path, channels: options.channels, pixelLimit: options.pixelLimit)
        case .jpeg:
            return try JPEG.decode(bytes, path: path, options: options).image(channels: options.channels)
        case .webp:
            return try WebP.decode(bytes, path: path, options: options).image(channels: options.channels)
        case .heif:
            return try HEIF.decode(bytes, path: path, options: options).image(channels: options.channels)
        }
    }

    /// The header of the file held in `bytes`, without decoding its pixels.
    public static func header(bytes: [UInt8], path: String) throws -> ImageHeader {
        switch try format(of: bytes, path: path) {
        case .png:
            let info = try PNG.info(bytes, path: path)
            return ImageHeader(format: .png, width: info.width, height: info.height, channels: info.channels)
        case .jpeg: return try JPEG.header(bytes, path: path)
        case .webp: return try WebP.header(bytes, path: path)
        case .heif: return try HEIF.header(bytes, path: path)
        }
    }

    /// The header of `path`.
    public static func header(path: String) throws -> ImageHeader {
        try header(bytes: try contents(of: path), path: path)
    }

    /// The format of `bytes`, or an error saying what the file looks like instead.
    public static func format(of bytes: [UInt8], path: String) throws -> ImageFormat {
        if bytes.isEmpty { throw ImageIOError(path: path, "empty file (0 bytes): not an image") }
        if let f = bytes.withUnsafeBytes({ ImageFormat(sniffing: $0) }) { return f }
        let head = bytes.prefix(8).map { String($0, radix: 16, uppercase: true) }.map { $0.count == 1 ? "0" + $0 : $0 }
        throw ImageIOError(path: path, "not a PNG, JPEG, WebP or HEIF (HEIC, AVIF) file (starts with bytes \(head.joined(separator: " ")))")
    }

    /// Throws when `width` x `height` exceeds `limit` (or a side is not positive).
    static func checkPixels(width: Int, height: Int, limit: Int, path: String) throws {
        guard width > 0, height > 0 else { throw ImageIOError(path: path, "the header declares an empty \(width)x\(height) image") }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        if overflow || pixels > limit {
            throw ImageIOError(path: path, "the header declares \(width)x\(height) pixels, more than the limit of \(limit) (a decompression bomb?); raise the limit ('maxPixels', --max-pixels) to read it")
        }
    }

    /// The whole of `path`, with an error naming it when it cannot be read.
    public static func contents(of path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ImageIOError(path: path, "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw ImageIOError(path: path, "cannot stat: \(String(cString: strerror(errno)))") }
        guard status.st_mode & S_IFMT == S_IFREG else { throw ImageIOError(path: path, "not a regular file") }
        let size = Int(status.st_size)
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, size - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ImageIOError(path: path, n == 0 ? "file shrank while being read" : "read failed: \(String(cString: strerror(errno)))") }
            done += n
        }
        return bytes
    }
}

/// 8-bit samples, interleaved (HWC), as the JPEG and WebP decoders produce them.
struct InterleavedImage {
    var width: Int
    var height: Int
    var channels: Int
    var bytes: [UInt8]

    /// As an `Image` in [0, 1] with `channels` channels (nil: its own).
    func image(channels target: Int?) throws -> Image {
        let c = channels, n = width * height
        var out = Image(width: width, height: height, channels: c, repeating: 0)
        bytes.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                for ch in 0..<c {
                    let plane = dst.baseAddress! + ch * n
                    var s = src.baseAddress! + ch
                    for i in 0..<n {
                        plane[i] = Float(s.pointee) * (1 / 255)
                        s += c
                    }
                }
            }
        }
        guard let target, target != c else { return out }
        return try out.converted(toChannels: target)
    }

    /// This image turned upright by EXIF `orientation` (2 to 8; others leave it unchanged), as
    /// Pillow's `ImageOps.exif_transpose`.
    func oriented(_ orientation: Int) -> InterleavedImage {
        guard (2...8).contains(orientation) else { return self }
        let (w, h, c) = (width, height, channels)
        let swaps = orientation >= 5
        let (ow, oh) = swaps ? (h, w) : (w, h)
        var out = [UInt8](repeating: 0, count: bytes.count)
        bytes.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<oh {
                    for x in 0..<ow {
                        // Source row and column of output pixel (x, y).
                        let (sy, sx): (Int, Int)
                        switch orientation {
                        case 2: (sy, sx) = (y, w - 1 - x)              // mirror left-right
                        case 3: (sy, sx) = (h - 1 - y, w - 1 - x)      // rotate 180
                        case 4: (sy, sx) = (h - 1 - y, x)              // mirror top-bottom
                        case 5: (sy, sx) = (x, y)                      // transpose
                        case 6: (sy, sx) = (h - 1 - x, y)              // rotate 90 clockwise
                        case 7: (sy, sx) = (h - 1 - x, w - 1 - y)      // transverse
                        default: (sy, sx) = (x, w - 1 - y)             // 8: rotate 90 counter-clockwise
                        }
                        let s = (sy * w + sx) * c, d = (y * ow + x) * c
                        for k in 0..<c { dst[d + k] = src[s + k] }
                    }
                }
            }
        }
        return InterleavedImage(width: ow, height: oh, channels: c, bytes: out)
    }
}
