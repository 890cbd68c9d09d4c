import CHEIF
import Foundation

/// HEIF decoding through libheif: HEIC (HEVC-coded, as phones save photos) and AVIF (AV1-coded),
/// the primary image of the file, 8 bits per sample (higher bit depths are converted by libheif),
/// with alpha when the file has it. The container's rotation and mirroring (`irot`, `imir`) are
/// applied by libheif, as pillow-heif and Pillow apply them; HEIF writers put the orientation
/// there, not in the EXIF orientation tag.
enum HEIF {
    /// The major brands of the HEIF files libheif decodes: HEVC still images and sequences, the
    /// generic image brands, and AV1 (AVIF).
    static let brands: Set<String> = ["heic", "heix", "heim", "heis", "hevc", "hevx", "hevm", "hevs", "mif1", "msf1", "avif", "avis"]

    /// Whether `bytes` starts with an ISO-BMFF `ftyp` box of a HEIF brand.
    static func sniff(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= 12, String(decoding: bytes[4..<8], as: UTF8.self) == "ftyp" else { return false }
        return brands.contains(String(decoding: bytes[8..<12], as: UTF8.self))
    }

    static func header(_ bytes: [UInt8], path: String) throws -> ImageHeader {
        try withPrimaryImage(bytes, path: path) { handle in
            ImageHeader(format: .heif, width: Int(heif_image_handle_get_width(handle)), height: Int(heif_image_handle_get_height(handle)),
                        channels: heif_image_handle_has_alpha_channel(handle) != 0 ? 4 : 3)
        }
    }

    static func decode(_ bytes: [UInt8], path: String, options: ImageDecodeOptions) throws -> InterleavedImage {
        try withPrimaryImage(bytes, path: path) { handle in
            let (w, h) = (Int(heif_image_handle_get_width(handle)), Int(heif_image_handle_get_height(handle)))
            try ImageFile.checkPixels(width: w, height: h, limit: options.pixelLimit, path: path)
            // Alpha is kept only when asked for or when the caller keeps the file's channels.
            let alpha = heif_image_handle_has_alpha_channel(handle) != 0 && (options.channels == nil || options.channels == 2 || options.channels == 4)
            let channels = alpha ? 4 : 3
            var image: OpaquePointer?
            try check(heif_decode_image(handle, &image, heif_colorspace_RGB, alpha ? heif_chroma_interleaved_RGBA : heif_chroma_interleaved_RGB, nil),
                      path: path, "cannot decode HEIF image")
            defer { heif_image_release(image) }
            var stride: Int32 = 0
            guard let plane = heif_image_get_plane_readonly(image, heif_channel_interleaved, &stride),
                  Int(heif_image_get_width(image, heif_channel_interleaved)) == w, Int(heif_image_get_height(image, heif_channel_interleaved)) == h,
                  Int(stride) >= w * channels else {
                throw ImageIOError(path: path, "cannot decode HEIF image: libheif returned no \(w)x\(h) interleaved RGB plane")
            }
            var pixels = [UInt8](repeating: 0, count: w * h * channels)
            pixels.withUnsafeMutableBufferPointer { dst in
                for y in 0..<h {
                    (dst.baseAddress! + y * w * channels).update(from: plane + y * Int(stride), count: w * channels)
                }
            }
            return InterleavedImage(width: w, height: h, channels: channels, bytes: pixels)
        }
    }

    /// Runs `body` with the primary image of the HEIF file in `bytes`.
    private static func withPrimaryImage<T>(_ bytes: [UInt8], path: String, _ body: (OpaquePointer) throws -> T) throws -> T {
        guard let context = heif_context_alloc() else { throw ImageIOError(path: path, "cannot decode HEIF: libheif could not allocate a context") }
        defer { heif_context_free(context) }
        return try bytes.withUnsafeBytes { raw in
            try check(heif_context_read_from_memory_without_copy(context, raw.baseAddress, raw.count, nil), path: path, "cannot read HEIF")
            var handle: OpaquePointer?
            try check(heif_context_get_primary_image_handle(context, &handle), path: path, "cannot read HEIF")
            defer { heif_image_handle_release(handle) }
            return try body(handle!)
        }
    }

    private static func check(_ error: heif_error, path: String, _ what: String) throws {
        guard error.code != heif_error_Ok else { return }
        let text = error.message.map { String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        let message = text.isEmpty ? "libheif error \(error.code.rawValue).\(error.subcode.rawValue)" : text
        throw ImageIOError(path: path, "\(what): \(message)")
    }
}
