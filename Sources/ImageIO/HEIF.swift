import CHEIF
import Foundation

/// HEIF decoding through libheif: HEIC (HEVC-coded, as phones save photos) and AVIF (AV1-coded),
/// the primary image of the file, 8 bits per sample (higher bit depths are converted by libheif),
/// with alpha when the file has it. The container's crop, rotation and mirroring (`clap`, `irot`,
/// `imir`) are applied by libheif while decoding (HEIF writers put the orientation there, not in
/// the EXIF orientation tag); the size they give is worked out here from the boxes
/// (`sizes`), since libheif 1.15's reported size depends on the order of the boxes.
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
            let (w, h) = sizes(handle, bytes).upright
            return ImageHeader(format: .heif, width: w, height: h, channels: heif_image_handle_has_alpha_channel(handle) != 0 ? 4 : 3)
        }
    }

    /// The primary image's size as libheif decodes it (`upright`), and the coded size the decoder
    /// allocates before it crops (`coded`).
    ///
    /// The decoded size is the coded one (`ispe`) put through the item's transformative properties
    /// in the order the file associates them, as the decoder applies them: a clean-aperture crop,
    /// `clap`, sets the size; a quarter turn, `irot` of 90 or 270 degrees, as phones store portrait
    /// photos, swaps the sides; a mirror, `imir`, keeps it. libheif 1.15's own reported size cannot
    /// serve: it applies `clap` and `irot` only when they come after `ispe` in the item's list, so
    /// it is the upright size for a file ordered as the standard asks (ISO/IEC 23008-12, 6.5.1:
    /// descriptive properties first) and the coded one for a file that lists `irot` first (as
    /// libheif 1.15 writes them). Without a readable `ispe`, both are the size libheif reports.
    static func sizes(_ handle: OpaquePointer, _ bytes: [UInt8]) -> (upright: (width: Int, height: Int), coded: (width: Int, height: Int)) {
        let reported = (width: Int(heif_image_handle_get_width(handle)), height: Int(heif_image_handle_get_height(handle)))
        guard let geometry = bytes.withUnsafeBytes({ primaryGeometry($0) }), let coded = geometry.coded, let upright = geometry.decodedSize else {
            return (reported, reported)
        }
        return (upright, (coded[0], coded[1]))
    }

    static func decode(_ bytes: [UInt8], path: String, options: ImageDecodeOptions) throws -> InterleavedImage {
        try withPrimaryImage(bytes, path: path) { handle in
            // The limit bounds what libheif allocates: the coded picture, before any crop.
            let (upright, coded) = sizes(handle, bytes)
            try ImageFile.checkPixels(width: coded.width, height: coded.height, limit: options.pixelLimit, path: path)
            // Alpha is kept only when asked for or when the caller keeps the file's channels.
            let alpha = heif_image_handle_has_alpha_channel(handle) != 0 && (options.channels == nil || options.channels == 2 || options.channels == 4)
            let channels = alpha ? 4 : 3
            var image: OpaquePointer?
            try check(heif_decode_image(handle, &image, heif_colorspace_RGB, alpha ? heif_chroma_interleaved_RGBA : heif_chroma_interleaved_RGB, nil),
                      path: path, "cannot decode HEIF image")
            defer { heif_image_release(image) }
            // The picture must have the size the header gives (`sizes`): a file whose boxes say
            // otherwise than libheif's decoding (a fractional clean aperture, rounded differently)
            // is refused, naming both sizes.
            var stride: Int32 = 0
            let (w, h) = (Int(heif_image_get_width(image, heif_channel_interleaved)), Int(heif_image_get_height(image, heif_channel_interleaved)))
            guard let plane = heif_image_get_plane_readonly(image, heif_channel_interleaved, &stride), Int(stride) >= w * channels else {
                throw ImageIOError(path: path, "cannot decode HEIF image: libheif returned no interleaved RGB plane")
            }
            guard w == upright.width, h == upright.height, w > 0, h > 0 else {
                throw ImageIOError(path: path, "cannot decode HEIF image: libheif returned a \(w)x\(h) picture where the file's boxes give \(upright.width)x\(upright.height)")
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

    /// The primary item's coded size and transformative properties, in the file's order.
    struct Geometry: Equatable {
        enum Transform: Equatable {
            /// `clap`: the clean aperture's size, each side rounded to the nearest whole pixel.
            case crop(width: Int, height: Int)
            /// `irot`: counter-clockwise quarter turns, 0 to 3.
            case quarterTurns(Int)
            /// `imir`: 0 mirrors about the vertical axis, 1 about the horizontal one.
            case mirror(axis: Int)
        }
        /// The `ispe` box's width and height, when the item has one.
        var coded: [Int]?
        var transforms: [Transform] = []

        /// The size after the transforms, as the decoder returns the picture; nil without `ispe`.
        var decodedSize: (width: Int, height: Int)? {
            guard let coded else { return nil }
            var size = (width: coded[0], height: coded[1])
            for t in transforms {
                switch t {
                case .crop(let w, let h): size = (w, h)
                case .quarterTurns(let n): if n % 2 == 1 { size = (size.height, size.width) }
                case .mirror: break
                }
            }
            return size
        }
    }

    /// The primary item's `ispe` size and its `clap`, `irot` and `imir` properties in the order of
    /// its association list, or nil when it has none of them or the boxes cannot be read (then
    /// libheif's own reading of the file decides).
    ///
    /// ISO/IEC 23008-12: the `meta` box (a full box) holds `pitm` (the primary item's id), and
    /// `iprp` holds `ipco` (the properties, numbered from 1 in order) and `ipma` (each item's
    /// property numbers). Every read is bounds-checked; sizes that run past their box end the walk.
    static func primaryGeometry(_ bytes: UnsafeRawBufferPointer) -> Geometry? {
        func u32(_ at: Int) -> Int? { at >= 0 && at + 4 <= bytes.count ? bytes[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } : nil }
        func u16(_ at: Int) -> Int? { at >= 0 && at + 2 <= bytes.count ? Int(bytes[at]) << 8 | Int(bytes[at + 1]) : nil }
        /// The boxes in `range`: type, start of the payload, end.
        func boxes(_ range: Range<Int>) -> [(type: String, body: Int, end: Int)] {
            var out: [(String, Int, Int)] = []
            var at = range.lowerBound
            while at + 8 <= range.upperBound, let size32 = u32(at) {
                let type = String(decoding: bytes[(at + 4)..<(at + 8)], as: UTF8.self)
                var body = at + 8, size = size32
                if size32 == 1 {
                    guard let high = u32(at + 8), let low = u32(at + 12), high == 0 else { break }
                    size = low
                    body = at + 16
                } else if size32 == 0 {
                    size = range.upperBound - at
                }
                guard size >= body - at, at + size <= range.upperBound else { break }
                out.append((type, body, at + size))
                at += size
            }
            return out
        }
        /// A `clap` fraction (numerator, denominator) as the nearest whole number; nil for a zero
        /// denominator or a size below one pixel.
        func rounded(_ at: Int) -> Int? {
            guard let n = u32(at), let d = u32(at + 4), d > 0 else { return nil }
            let r = (n + d / 2) / d
            return r >= 1 ? r : nil
        }
        guard let meta = boxes(0..<bytes.count).first(where: { $0.type == "meta" }), meta.body + 4 <= meta.end else { return nil }
        let children = boxes((meta.body + 4)..<meta.end)
        guard let pitm = children.first(where: { $0.type == "pitm" }), pitm.body + 4 < pitm.end,
              let primary = bytes[pitm.body] == 0 ? u16(pitm.body + 4) : u32(pitm.body + 4),
              let iprp = children.first(where: { $0.type == "iprp" }) else { return nil }
        let properties = boxes(iprp.body..<iprp.end)
        guard let ipco = properties.first(where: { $0.type == "ipco" }) else { return nil }
        let list = boxes(ipco.body..<ipco.end)
        var geometry = Geometry()
        for ipma in properties where ipma.type == "ipma" && ipma.body + 8 <= ipma.end {
            let version = Int(bytes[ipma.body]), wide = bytes[ipma.body + 3] & 1 == 1
            guard var count = u32(ipma.body + 4) else { return nil }
            var at = ipma.body + 8
            while count > 0, at < ipma.end {
                count -= 1
                guard let item = version < 1 ? u16(at) : u32(at) else { return nil }
                at += version < 1 ? 2 : 4
                guard at < ipma.end else { return nil }
                let associations = Int(bytes[at])
                at += 1
                for _ in 0..<associations {
                    guard let index = wide ? u16(at).map({ $0 & 0x7FFF }) : (at < ipma.end ? Int(bytes[at]) & 0x7F : nil) else { return nil }
                    at += wide ? 2 : 1
                    guard at <= ipma.end else { return nil }
                    guard item == primary, index >= 1, index <= list.count else { continue }
                    let property = list[index - 1]
                    switch property.type {
                    case "ispe":  // a full box: version and flags, then width and height
                        guard property.body + 12 <= property.end, let w = u32(property.body + 4), let h = u32(property.body + 8) else { return nil }
                        geometry.coded = [w, h]
                    case "clap":  // width, height, horizontal and vertical offset, each a fraction
                        guard property.body + 32 <= property.end, let w = rounded(property.body), let h = rounded(property.body + 8) else { return nil }
                        geometry.transforms.append(.crop(width: w, height: h))
                    case "irot":
                        guard property.body < property.end else { return nil }
                        geometry.transforms.append(.quarterTurns(Int(bytes[property.body] & 3)))
                    case "imir":
                        guard property.body < property.end else { return nil }
                        geometry.transforms.append(.mirror(axis: Int(bytes[property.body] & 1)))
                    default:
                        break
                    }
                }
            }
        }
        return geometry.coded == nil && geometry.transforms.isEmpty ? nil : geometry
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
