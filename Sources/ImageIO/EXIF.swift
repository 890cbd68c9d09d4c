/// The parts of a file's metadata that change how its pixels are read: the EXIF orientation and,
/// in JPEG files, Adobe's APP14 marker (whose presence means CMYK samples are stored inverted).
///
/// Every read is bounds-checked: a hostile length or offset ends the search, it never reads past
/// the buffer.
enum EXIF {
    /// The orientation tag (0x0112) of a TIFF structure (EXIF's body), 1 when absent or invalid.
    static func orientation(tiff: UnsafeRawBufferPointer) -> Int {
        guard tiff.count >= 8 else { return 1 }
        let little: Bool
        switch (tiff[0], tiff[1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return 1
        }
        func u16(_ at: Int) -> Int? {
            guard at >= 0, at + 2 <= tiff.count else { return nil }
            let (a, b) = (Int(tiff[at]), Int(tiff[at + 1]))
            return little ? a | b << 8 : a << 8 | b
        }
        func u32(_ at: Int) -> Int? {
            guard let hi = u16(little ? at + 2 : at), let lo = u16(little ? at : at + 2) else { return nil }
            return hi << 16 | lo
        }
        guard u16(2) == 42, let ifd = u32(4), let entries = u16(ifd) else { return 1 }
        for i in 0..<entries {
            let entry = ifd + 2 + 12 * i
            guard let tag = u16(entry) else { return 1 }
            // Type 3 (SHORT), count 1: the value sits in the first two bytes of the value field.
            if tag == 0x0112, u16(entry + 2) == 3, u32(entry + 4) == 1, let value = u16(entry + 8) {
                return (1...8).contains(value) ? value : 1
            }
        }
        return 1
    }

    /// What a JPEG's markers before the first scan say.
    struct JPEGMarkers {
        var orientation = 1
        var adobe = false
    }

    /// Walks a JPEG's marker segments up to its first scan (SOS), reading APP1 EXIF and APP14 Adobe.
    static func jpegMarkers(_ bytes: UnsafeRawBufferPointer) -> JPEGMarkers {
        var found = JPEGMarkers()
        var at = 2  // after SOI
        var sawEXIF = false
        while at + 4 <= bytes.count {
            guard bytes[at] == 0xFF else { break }
            let marker = bytes[at + 1]
            if marker == 0xFF { at += 1; continue }  // fill byte
            if marker == 0xD8 || (0xD0...0xD7).contains(marker) || marker == 0x01 { at += 2; continue }
            if marker == 0xDA || marker == 0xD9 { break }
            let length = Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
            guard length >= 2, at + 2 + length <= bytes.count else { break }
            let body = UnsafeRawBufferPointer(rebasing: bytes[(at + 4)..<(at + 2 + length)])
            let exifHeader: [UInt8] = [0x45, 0x78, 0x69, 0x66, 0, 0]  // "Exif\0\0"
            if marker == 0xE1, !sawEXIF, body.count >= 6, zip(body.prefix(6), exifHeader).allSatisfy({ $0 == $1 }) {
                // Pillow reads the first EXIF segment.
                sawEXIF = true
                found.orientation = orientation(tiff: UnsafeRawBufferPointer(rebasing: body[6...]))
            } else if marker == 0xEE, body.count >= 5, Array(body.prefix(5)) == Array("Adobe".utf8) {
                found.adobe = true
            }
            at += 2 + length
        }
        return found
    }

    /// The orientation in a WebP file's EXIF chunk (RIFF chunk "EXIF"), 1 when it has none.
    static func webpOrientation(_ bytes: UnsafeRawBufferPointer) -> Int {
        var at = 12  // after "RIFF", size, "WEBP"
        while at + 8 <= bytes.count {
            let id = Array(bytes[at..<(at + 4)])
            let size = Int(bytes[at + 4]) | Int(bytes[at + 5]) << 8 | Int(bytes[at + 6]) << 16 | Int(bytes[at + 7]) << 24
            guard size >= 0, at + 8 + size <= bytes.count else { return 1 }
            if id == Array("EXIF".utf8) {
                var body = UnsafeRawBufferPointer(rebasing: bytes[(at + 8)..<(at + 8 + size)])
                // Some writers keep JPEG's "Exif\0\0" prefix in the chunk.
                if body.count >= 6, Array(body.prefix(4)) == Array("Exif".utf8) { body = UnsafeRawBufferPointer(rebasing: body[6...]) }
                return orientation(tiff: body)
            }
            at += 8 + size + (size & 1)
        }
        return 1
    }
}
