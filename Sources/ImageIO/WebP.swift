import CWebP

/// WebP decoding through libwebp: lossy and lossless still images, with or without alpha, turned
/// upright by an EXIF chunk's orientation. Animated files are refused (their first frame is not a
/// photograph's whole story).
enum WebP {
    static func header(_ bytes: [UInt8], path: String) throws -> ImageHeader {
        let features = try readFeatures(bytes, path: path)
        let orientation = bytes.withUnsafeBytes { EXIF.webpOrientation($0) }
        let (w, h) = (Int(features.width), Int(features.height))
        return ImageHeader(format: .webp, width: orientation >= 5 ? h : w, height: orientation >= 5 ? w : h,
                           channels: features.has_alpha != 0 ? 4 : 3)
    }

    static func decode(_ bytes: [UInt8], path: String, options: ImageDecodeOptions) throws -> InterleavedImage {
        let features = try readFeatures(bytes, path: path)
        let (w, h) = (Int(features.width), Int(features.height))
        try ImageFile.checkPixels(width: w, height: h, limit: options.pixelLimit, path: path)
        // Alpha is kept only when asked for or when the caller keeps the file's channels.
        let alpha = features.has_alpha != 0 && (options.channels == nil || options.channels == 2 || options.channels == 4)
        let channels = alpha ? 4 : 3
        var pixels = [UInt8](repeating: 0, count: w * h * channels)
        let ok = bytes.withUnsafeBufferPointer { src in
            pixels.withUnsafeMutableBufferPointer { dst in
                alpha
                    ? WebPDecodeRGBAInto(src.baseAddress, src.count, dst.baseAddress, dst.count, Int32(w * channels))
                    : WebPDecodeRGBInto(src.baseAddress, src.count, dst.baseAddress, dst.count, Int32(w * channels))
            }
        }
        guard ok != nil else { throw ImageIOError(path: path, "cannot decode WebP: the image data is corrupt or truncated") }
        let orientation = bytes.withUnsafeBytes { EXIF.webpOrientation($0) }
        return InterleavedImage(width: w, height: h, channels: channels, bytes: pixels).oriented(orientation)
    }

    private static func readFeatures(_ bytes: [UInt8], path: String) throws -> WebPBitstreamFeatures {
        var features = WebPBitstreamFeatures()
        let status = bytes.withUnsafeBufferPointer { WebPGetFeatures($0.baseAddress, $0.count, &features) }
        guard status == VP8_STATUS_OK else { throw ImageIOError(path: path, "cannot decode WebP: \(describe(status))") }
        if features.has_animation != 0 { throw ImageIOError(path: path, "animated WebP files are not supported") }
        return features
    }

    private static func describe(_ status: VP8StatusCode) -> String {
        switch status {
        case VP8_STATUS_OUT_OF_MEMORY: return "out of memory"
        case VP8_STATUS_INVALID_PARAM: return "invalid parameter"
        case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error (not a valid WebP header)"
        case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature"
        case VP8_STATUS_NOT_ENOUGH_DATA: return "not enough data (truncated file)"
        default: return "status \(status.rawValue)"
        }
    }
}
