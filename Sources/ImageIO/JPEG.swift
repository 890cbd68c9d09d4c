import CTurboJPEG

/// JPEG decoding through libjpeg-turbo's TurboJPEG API.
///
/// Baseline and progressive files; gray files decode to one channel, colour (YCbCr, RGB) to three,
/// CMYK and YCCK to three by Pillow's CMYK-to-RGB rule (samples inverted as Adobe's APP14 marker
/// says). Decoding is TurboJPEG's default (accurate integer DCT, smooth chroma upsampling), as
/// Pillow's. Any libjpeg warning (a truncated file, a corrupt entropy segment) is an error: TurboJPEG
/// stops on it and reports it, and libjpeg's `exit()` error handler never runs.
enum JPEG {
    /// Scale factors tried, smallest first: libjpeg-turbo decodes these by skipping DCT coefficients.
    private static let scales: [(num: Int32, denom: Int32)] = [(1, 8), (1, 4), (1, 2), (1, 1)]
    /// Progressive files with more scans than this are refused (TurboJPEG's TJFLAG_LIMITSCANS: 500).
    private static let flags = TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS

    private struct Header {
        var width: Int
        var height: Int
        var colorspace: Int32
    }

    static func header(_ bytes: [UInt8], path: String) throws -> ImageHeader {
        let handle = try open(path)
        defer { tjDestroy(handle) }
        let h = try readHeader(handle, bytes, path: path)
        let markers = bytes.withUnsafeBytes { EXIF.jpegMarkers($0) }
        let swap = markers.orientation >= 5
        return ImageHeader(format: .jpeg, width: swap ? h.height : h.width, height: swap ? h.width : h.height,
                           channels: h.colorspace == TJCS_GRAY.rawValue ? 1 : 3)
    }

    static func decode(_ bytes: [UInt8], path: String, options: ImageDecodeOptions) throws -> InterleavedImage {
        let handle = try open(path)
        defer { tjDestroy(handle) }
        let header = try readHeader(handle, bytes, path: path)
        try ImageFile.checkPixels(width: header.width, height: header.height, limit: options.pixelLimit, path: path)
        let markers = bytes.withUnsafeBytes { EXIF.jpegMarkers($0) }
        // The smallest scale whose oriented result still covers `atLeast`.
        var scale = scales.last!
        if let want = options.atLeast {
            let (needW, needH) = markers.orientation >= 5 ? (want.height, want.width) : (want.width, want.height)
            scale = scales.first { s in
                Int(ganflow_tj_scaled(Int32(header.width), s.num, s.denom)) >= needW
                    && Int(ganflow_tj_scaled(Int32(header.height), s.num, s.denom)) >= needH
            } ?? scale
        }
        let w = Int(ganflow_tj_scaled(Int32(header.width), scale.num, scale.denom))
        let h = Int(ganflow_tj_scaled(Int32(header.height), scale.num, scale.denom))
        let cmyk = header.colorspace == TJCS_CMYK.rawValue || header.colorspace == TJCS_YCCK.rawValue
        let gray = header.colorspace == TJCS_GRAY.rawValue
        let (format, channels) = cmyk ? (TJPF_CMYK, 4) : gray ? (TJPF_GRAY, 1) : (TJPF_RGB, 3)
        var pixels = [UInt8](repeating: 0, count: w * h * channels)
        let rc = bytes.withUnsafeBufferPointer { src in
            pixels.withUnsafeMutableBufferPointer { dst in
                tjDecompress2(handle, src.baseAddress, UInt(src.count), dst.baseAddress, Int32(w), 0, Int32(h),
                              format.rawValue, flags)
            }
        }
        if rc != 0 { throw failure(handle, path) }
        var image = InterleavedImage(width: w, height: h, channels: channels, bytes: pixels)
        if cmyk { image = rgb(fromCMYK: image, inverted: markers.adobe) }
        return image.oriented(markers.orientation)
    }

    /// Pillow's CMYK to RGB (`cmyk2rgb`): `R = (255 - K) - C * (255 - K) / 255`, with its rounding;
    /// files with Adobe's marker store `255 - C` ... `255 - K`, as Photoshop writes them.
    private static func rgb(fromCMYK image: InterleavedImage, inverted: Bool) -> InterleavedImage {
        let n = image.width * image.height
        var out = [UInt8](repeating: 0, count: n * 3)
        image.bytes.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<n {
                    let s = src.baseAddress! + 4 * i
                    let nk = inverted ? Int(s[3]) : 255 - Int(s[3])
                    for c in 0..<3 {
                        let ink = inverted ? 255 - Int(s[c]) : Int(s[c])
                        let t = ink * nk + 128
                        dst[3 * i + c] = UInt8(max(0, nk - ((t >> 8) + t) >> 8))
                    }
                }
            }
        }
        return InterleavedImage(width: image.width, height: image.height, channels: 3, bytes: out)
    }

    private static func open(_ path: String) throws -> tjhandle {
        guard let handle = tjInitDecompress() else {
            throw ImageIOError(path: path, "cannot start the JPEG decoder: \(String(cString: tjGetErrorStr2(nil)))")
        }
        return handle
    }

    private static func readHeader(_ handle: tjhandle, _ bytes: [UInt8], path: String) throws -> Header {
        var w: Int32 = 0, h: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        let rc = bytes.withUnsafeBufferPointer { tjDecompressHeader3(handle, $0.baseAddress, UInt($0.count), &w, &h, &subsampling, &colorspace) }
        if rc != 0 { throw failure(handle, path) }
        return Header(width: Int(w), height: Int(h), colorspace: colorspace)
    }

    private static func failure(_ handle: tjhandle, _ path: String) -> ImageIOError {
        let message = String(cString: tjGetErrorStr2(handle))
        // With TJFLAG_STOPONWARNING a warning (truncated data, a bad entropy segment) also stops the
        // decoder; say which kind of problem libjpeg met.
        let kind = tjGetErrorCode(handle) == TJERR_WARNING.rawValue ? "damaged JPEG data" : "cannot decode JPEG"
        return ImageIOError(path: path, "\(kind): \(message)")
    }
}
