import CPNG

/// Reading and writing PNG files through libpng's simplified API.
///
/// Samples become Floats in [0, 1] as `code / 255` for files of 8 bits or fewer (palette and 1, 2, 4-bit
/// gray are expanded) and `code / 65535` for 16-bit files: each file is decoded at its own depth, so no
/// gamma conversion happens between 8-bit (sRGB) and 16-bit (linear) encodings. Asking for other channels
/// than the file has is done by libpng: gray to RGB replicates, RGB to gray takes libpng's sRGB luminance,
/// and removing alpha composites onto black.
public enum PNG {
    /// Bits per sample in a written file.
    public enum BitDepth: Int, Sendable {
        case eight = 8
        case sixteen = 16
    }

    /// What a file's header says.
    public struct Info: Equatable, Sendable {
        public var width: Int
        public var height: Int
        /// Channels in the file after expanding a palette (and its transparency): 1 to 4.
        public var channels: Int
        /// 16 for 16-bit files, 8 for all others (including palette and 1, 2, 4-bit gray).
        public var bitDepth: Int
    }

    /// Reads the header of `path`.
    public static func info(_ path: String) throws -> Info {
        let image = try begin(path)
        defer { release(image) }
        return info(of: image.pointee)
    }

    /// Reads `path` as an image with `channels` channels (1, 2, 3 or 4; nil keeps the file's own).
    public static func read(_ path: String, channels: Int? = nil, pixelLimit: Int = ImageFile.defaultPixelLimit) throws -> Image {
        try decode(try ImageFile.contents(of: path), path: path, channels: channels, pixelLimit: pixelLimit)
    }

    /// Decodes the PNG file held in `bytes` (named `path` in errors).
    ///
    /// The header's declared size is checked against `pixelLimit` before any pixel buffer is made.
    public static func decode(_ bytes: [UInt8], path: String, channels: Int? = nil, pixelLimit: Int = ImageFile.defaultPixelLimit) throws -> Image {
        if let c = channels, !(1...4).contains(c) {
            throw ImageIOError(path: path, "cannot read as \(c) channels: images have 1 to 4")
        }
        return try bytes.withUnsafeBytes { memory in
            let image = allocate()
            defer { release(image) }
            try check(png_image_begin_read_from_memory(image, memory.baseAddress, memory.count), image, path)
            let fileInfo = info(of: image.pointee)
            try ImageFile.checkPixels(width: fileInfo.width, height: fileInfo.height, limit: pixelLimit, path: path)
            let c = channels ?? fileInfo.channels
            let sixteen = fileInfo.bitDepth == 16
            image.pointee.format = format(channels: c, sixteen: sixteen)
            let (w, h) = (fileInfo.width, fileInfo.height)
            var out = Image(width: w, height: h, channels: c, repeating: 0)
            let stride = Int32(w * c)
            if sixteen {
                var buffer = [UInt16](repeating: 0, count: w * h * c)
                let ok = buffer.withUnsafeMutableBytes { png_image_finish_read(image, nil, $0.baseAddress, stride, nil) }
                try check(ok, image, path)
                deinterleave(buffer, into: &out, maximum: 65535)
                // libpng returns 16-bit color multiplied by alpha ("associated alpha"); undo it.
                if c == 2 || c == 4 { unpremultiply(&out) }
            } else {
                var buffer = [UInt8](repeating: 0, count: w * h * c)
                let ok = buffer.withUnsafeMutableBytes { png_image_finish_read(image, nil, $0.baseAddress, stride, nil) }
                try check(ok, image, path)
                deinterleave(buffer, into: &out, maximum: 255)
            }
            return out
        }
    }

    /// The header of the PNG file held in `bytes`.
    static func info(_ bytes: [UInt8], path: String) throws -> Info {
        try bytes.withUnsafeBytes { memory in
            let image = allocate()
            defer { release(image) }
            try check(png_image_begin_read_from_memory(image, memory.baseAddress, memory.count), image, path)
            return info(of: image.pointee)
        }
    }

    /// Writes `image` to `path` as a gray, gray+alpha, RGB or RGBA PNG (by its channel count).
    ///
    /// Samples are clamped to [0, 1] and rounded to the nearest code.
    public static func write(_ image: Image, to path: String, bitDepth: BitDepth = .eight) throws {
        if bitDepth == .eight {
            let buffer: [UInt8] = interleave(image) { PixelRange.unit.byte($0) }
            return try buffer.withUnsafeBytes { try write(bytes: $0, width: image.width, height: image.height, channels: image.channels, to: path) }
        }
        let png = allocate()
        defer { release(png) }
        png.pointee.width = UInt32(image.width)
        png.pointee.height = UInt32(image.height)
        png.pointee.format = format(channels: image.channels, sixteen: true)
        var source = image
        // libpng expects associated alpha for 16-bit data and divides it out when writing.
        if image.channels == 2 || image.channels == 4 { premultiply(&source) }
        let buffer: [UInt16] = interleave(source) { UInt16(($0 * 65535).rounded()) }
        let stride = Int32(image.width * image.channels)
        try check(buffer.withUnsafeBytes { png_image_write_to_file(png, path, 0, $0.baseAddress, stride, nil) }, png, path)
    }

    // MARK: - libpng plumbing

    // libpng keeps a pointer to the png_image it was given (its error handler writes `message` through
    // it), so a png_image must not move between begin and finish: it lives on the heap, not in a var.
    static func allocate() -> UnsafeMutablePointer<png_image> {
        let image = UnsafeMutablePointer<png_image>.allocate(capacity: 1)
        image.initialize(to: png_image())
        image.pointee.version = UInt32(PNG_IMAGE_VERSION)
        return image
    }

    /// Frees libpng's state (a no-op when a call already did) and the png_image itself.
    static func release(_ image: UnsafeMutablePointer<png_image>) {
        png_image_free(image)
        image.deallocate()
    }

    private static func begin(_ path: String) throws -> UnsafeMutablePointer<png_image> {
        let image = allocate()
        do {
            try check(png_image_begin_read_from_file(image, path), image, path)
        } catch {
            release(image)
            throw error
        }
        return image
    }

    static func check(_ ok: Int32, _ image: UnsafeMutablePointer<png_image>, _ path: String) throws {
        if ok != 0 && ganflow_png_image_failed(image) == 0 { return }
        let reason = withUnsafeBytes(of: image.pointee.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        png_image_free(image)
        throw ImageIOError(path: path, reason.isEmpty ? "libpng failed without a message" : reason)
    }

    private static func info(of image: png_image) -> Info {
        let f = image.format
        let color = f & UInt32(PNG_FORMAT_FLAG_COLOR) != 0
        let alpha = f & UInt32(PNG_FORMAT_FLAG_ALPHA) != 0
        return Info(width: Int(image.width), height: Int(image.height),
                    channels: (color ? 3 : 1) + (alpha ? 1 : 0),
                    bitDepth: f & UInt32(PNG_FORMAT_FLAG_LINEAR) != 0 ? 16 : 8)
    }

    static func format(channels: Int, sixteen: Bool) -> UInt32 {
        var f: UInt32 = 0
        if channels >= 3 { f |= UInt32(PNG_FORMAT_FLAG_COLOR) }
        if channels == 2 || channels == 4 { f |= UInt32(PNG_FORMAT_FLAG_ALPHA) }
        if sixteen { f |= UInt32(PNG_FORMAT_FLAG_LINEAR) }
        return f
    }

    // MARK: - layout and alpha

    private static func deinterleave<T: BinaryInteger>(_ buffer: [T], into image: inout Image, maximum: Float) {
        let c = image.channels
        let n = image.planeSize
        buffer.withUnsafeBufferPointer { src in
            image.pixels.withUnsafeMutableBufferPointer { dst in
                for ch in 0..<c {
                    let plane = dst.baseAddress! + ch * n
                    for i in 0..<n { plane[i] = Float(src[i * c + ch]) / maximum }
                }
            }
        }
    }

    private static func interleave<T>(_ image: Image, _ code: (Float) -> T) -> [T] {
        let c = image.channels
        let n = image.planeSize
        var out = [T]()
        out.reserveCapacity(n * c)
        for i in 0..<n {
            for ch in 0..<c { out.append(code(min(max(image.pixels[ch * n + i], 0), 1))) }
        }
        return out
    }

    private static func premultiply(_ image: inout Image) {
        let n = image.planeSize
        let a = image.channels - 1
        for i in 0..<n {
            let alpha = min(max(image.pixels[a * n + i], 0), 1)
            for ch in 0..<a { image.pixels[ch * n + i] = min(max(image.pixels[ch * n + i], 0), 1) * alpha }
        }
    }

    private static func unpremultiply(_ image: inout Image) {
        let n = image.planeSize
        let a = image.channels - 1
        for i in 0..<n {
            let alpha = image.pixels[a * n + i]
            for ch in 0..<a { image.pixels[ch * n + i] = alpha > 0 ? min(image.pixels[ch * n + i] / alpha, 1) : 0 }
        }
    }
}
