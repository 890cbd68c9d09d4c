import Foundation
import Testing
@testable import ImageIO

/// GANFlow's decoders against Pillow's (Fixtures/images/golden, made by Scripts/golden/decode_images.py).
///
/// Tolerance: every sample within 2/255 of Pillow's, and the mean absolute difference under 0.5/255.
/// Both sides use libjpeg-turbo's accurate integer DCT and smooth upsampling (Pillow's wheel bundles
/// libjpeg-turbo 3, Debian ships 2.1.5) and libwebp (1.6 against 1.2.4), so the files decode alike
/// up to rounding in the colour conversion.
@Suite struct ImageFileTests {
    static let photos = ["astronaut-gray.jpg", "chelsea-baseline.jpg", "coffee-progressive.jpg", "hubble-444.jpg",
                         "rocket-cmyk.jpg", "rocket-ycck.jpg", "coffee-lossy.webp", "chelsea-alpha-lossless.webp",
                         "rocket-exif6.webp", "chelsea.heic", "chelsea-alpha.heic", "astronaut-gray.heic", "rocket-rotated.heic", "coffee.avif"]
        + (1...8).map { "chelsea-exif\($0).jpg" }

    @Test(arguments: photos) func decodesAsPillowDoes(name: String) throws {
        let image = try ImageFile.read(path: Fixtures.path("images/" + name))
        let golden = try PNG.read(Fixtures.path("images/golden/\(name).png"))
        #expect(image.width == golden.width && image.height == golden.height && image.channels == golden.channels)
        guard image.pixels.count == golden.pixels.count else { return }
        var worst: Float = 0, total: Float = 0
        for (a, b) in zip(image.pixels, golden.pixels) {
            worst = max(worst, abs(a - b))
            total += abs(a - b)
        }
        #expect(worst * 255 <= 2.001, "largest difference \(worst * 255)/255")
        #expect(total / Float(image.pixels.count) * 255 < 0.5, "mean difference \(total / Float(image.pixels.count) * 255)/255")
    }

    /// AVIF with chroma subsampled 4:2:0: Debian's libheif 1.15 and Pillow's libavif upsample the
    /// chroma differently, so colour edges differ by up to about 23/255 (measured: largest 23/255,
    /// mean 1.28/255); the tolerance is wider than for the other files. HEIC at 4:2:0
    /// (`chelsea.heic`) is within the common tolerance against pillow-heif's libheif 1.23.
    @Test func avifWithSubsampledChromaDecodesCloseToPillow() throws {
        let image = try ImageFile.read(path: Fixtures.path("images/coffee-420.avif"))
        let golden = try PNG.read(Fixtures.path("images/golden/coffee-420.avif.png"))
        #expect(image.width == golden.width && image.height == golden.height && image.channels == golden.channels)
        let differences = zip(image.pixels, golden.pixels).map { abs($0 - $1) * 255 }
        #expect(differences.count == golden.pixels.count && differences.max()! <= 32, "largest difference \(differences.max()!)/255")
        #expect(differences.reduce(0, +) / Float(differences.count) < 2, "mean difference \(differences.reduce(0, +) / Float(differences.count))/255")
    }

    @Test func headersGiveTheUprightSizeAndChannels() throws {
        let cases: [(String, ImageHeader)] = [
            ("chelsea-baseline.jpg", ImageHeader(format: .jpeg, width: 160, height: 106, channels: 3)),
            ("astronaut-gray.jpg", ImageHeader(format: .jpeg, width: 96, height: 96, channels: 1)),
            ("chelsea-exif6.jpg", ImageHeader(format: .jpeg, width: 32, height: 48, channels: 3)),
            ("rocket-exif6.webp", ImageHeader(format: .webp, width: 80, height: 120, channels: 3)),
            ("chelsea-alpha-lossless.webp", ImageHeader(format: .webp, width: 64, height: 43, channels: 4)),
            ("folder/space/hubble.png", ImageHeader(format: .png, width: 40, height: 27, channels: 3)),
            ("chelsea.heic", ImageHeader(format: .heif, width: 160, height: 106, channels: 3)),
            ("chelsea-alpha.heic", ImageHeader(format: .heif, width: 64, height: 43, channels: 4)),
            // A monochrome HEIF decodes to RGB (three equal channels).
            ("astronaut-gray.heic", ImageHeader(format: .heif, width: 96, height: 96, channels: 3)),
            ("coffee.avif", ImageHeader(format: .heif, width: 150, height: 100, channels: 3)),
            // Stored 120x80 with a quarter turn in its 'irot' box, as phones store portrait photos;
            // listed before 'ispe' (as libheif 1.15 writes it) or after (as the standard asks).
            ("rocket-rotated.heic", ImageHeader(format: .heif, width: 80, height: 120, channels: 3)),
            ("rocket-rotated-ispe-first.heic", ImageHeader(format: .heif, width: 80, height: 120, channels: 3)),
            // A mirror ('imir') keeps the size; a mirror and a quarter turn swap the sides.
            ("rocket-mirrored.heic", ImageHeader(format: .heif, width: 120, height: 80, channels: 3)),
            ("rocket-transposed.heic", ImageHeader(format: .heif, width: 80, height: 120, channels: 3)),
        ]
        for (name, expected) in cases {
            #expect(try ImageFile.header(path: Fixtures.path("images/" + name)) == expected, "\(name)")
        }
    }

    @Test func channelsAreConvertedOnRequest() throws {
        let gray = try ImageFile.read(path: Fixtures.path("images/astronaut-gray.jpg"), options: ImageDecodeOptions(channels: 3))
        #expect(gray.channels == 3 && Array(gray.pixels[0..<gray.planeSize]) == Array(gray.pixels[gray.planeSize..<(2 * gray.planeSize)]))
        let rgb = try ImageFile.read(path: Fixtures.path("images/coffee-lossy.webp"), options: ImageDecodeOptions(channels: 1))
        #expect(rgb.channels == 1 && rgb.width == 150)
        let rgba = try ImageFile.read(path: Fixtures.path("images/chelsea-alpha-lossless.webp"), options: ImageDecodeOptions(channels: 3))
        #expect(rgba.channels == 3)
    }

    @Test func scaledDecodingShrinksLargeJPEGsWhileDecoding() throws {
        let path = Fixtures.path("images/chelsea-baseline.jpg")  // 160x106
        let eighth = try ImageFile.read(path: path, options: ImageDecodeOptions(atLeast: (20, 13)))
        #expect(eighth.width == 20 && eighth.height == 14)
        let quarter = try ImageFile.read(path: path, options: ImageDecodeOptions(atLeast: (21, 14)))
        #expect(quarter.width == 40 && quarter.height == 27)
        let full = try ImageFile.read(path: path, options: ImageDecodeOptions(atLeast: (100, 100)))
        #expect(full.width == 160 && full.height == 106)
        // Orientation 6 swaps the sides the minimum applies to.
        let turned = try ImageFile.read(path: Fixtures.path("images/chelsea-exif6.jpg"), options: ImageDecodeOptions(atLeast: (8, 12)))
        #expect(turned.width == 8 && turned.height == 12)
        // The scaled picture is the full one shrunk: close to the area-averaged full decode.
        let reference = try ImageFile.read(path: path).resized(width: 40, height: 27)
        let mean = zip(quarter.pixels, reference.pixels).map { abs($0 - $1) }.reduce(0, +) / Float(quarter.pixels.count)
        #expect(mean < 0.03)
    }

    @Test func formatComesFromTheContentNotTheName() throws {
        let path = Fixtures.path("images/broken/png-named.jpg")
        #expect(try ImageFile.header(path: path).format == .png)
        #expect(try ImageFile.read(path: path).width == 40)
    }

    static let broken: [(String, String)] = [
        ("truncated.jpg", "damaged JPEG data: Premature end of JPEG file"),
        ("bad-huffman.jpg", "cannot decode JPEG: Bogus Huffman table definition"),
        ("empty.jpg", "empty file (0 bytes): not an image"),
        ("not-an-image.jpg", "not a PNG, JPEG, WebP or HEIF (HEIC, AVIF) file (starts with bytes 54 68 69 73 20 69 73 20)"),
        ("bomb.jpg", "the header declares 65000x65000 pixels, more than the limit of 89478485 (a decompression bomb?); raise the limit ('maxPixels', --max-pixels) to read it"),
        ("bomb.png", "the header declares 100000x100000 pixels, more than the limit of 89478485 (a decompression bomb?); raise the limit ('maxPixels', --max-pixels) to read it"),
        ("bomb.webp", "the header declares 16383x16383 pixels, more than the limit of 89478485 (a decompression bomb?); raise the limit ('maxPixels', --max-pixels) to read it"),
        ("truncated.webp", "cannot decode WebP: the image data is corrupt or truncated"),
        ("truncated.heic", "cannot read HEIF: Invalid input: Unexpected end of file: Extent in iloc box references data outside of file bounds (points to file position 379)"),
        // Refused by libheif's own limit (32768 a side) while reading the container, before any pixel buffer.
        ("bomb.heic", "cannot read HEIF: Memory allocation error: Security limit exceeded: Image size 100000x100000 exceeds the maximum image size 32768x32768"),
        // Found by the HEIF fuzzer: an AVIF whose 'ispe' declares 150x356 over a 150x100 picture.
        ("size-mismatch.avif", "cannot decode HEIF image: libheif returned a 150x100 picture where the file's boxes give 150x356"),
    ]

    @Test(arguments: broken) func brokenFilesNameTheFileAndTheProblem(name: String, reason: String) {
        let path = Fixtures.path("images/broken/" + name)
        #expect(imageIOError { _ = try ImageFile.read(path: path) } == ImageIOError(path: path, reason))
    }

    @Test func thePixelLimitIsConfigurable() throws {
        let path = Fixtures.path("images/chelsea-baseline.jpg")
        #expect(imageIOError { _ = try ImageFile.read(path: path, options: ImageDecodeOptions(pixelLimit: 160 * 106 - 1)) }?.reason
            == "the header declares 160x106 pixels, more than the limit of 16959 (a decompression bomb?); raise the limit ('maxPixels', --max-pixels) to read it")
        #expect(try ImageFile.read(path: path, options: ImageDecodeOptions(pixelLimit: 160 * 106)).width == 160)
        // HEIF: checked against the primary image's size before it is decoded.
        let heic = Fixtures.path("images/chelsea.heic")
        #expect(imageIOError { _ = try ImageFile.read(path: heic, options: ImageDecodeOptions(pixelLimit: 160 * 106 - 1)) }?.reason
            == "the header declares 160x106 pixels, more than the limit of 16959 (a decompression bomb?); raise the limit ('maxPixels', --max-pixels) to read it")
        let png = Fixtures.path("images/folder/space/hubble.png")
        #expect(imageIOError { _ = try ImageFile.read(path: png, options: ImageDecodeOptions(pixelLimit: 100)) } != nil)
    }

    /// One HEVC picture (120x80 as stored) in four containers: a quarter turn listed before or after
    /// the size box, a mirror, a mirror and a quarter turn (EXIF orientations 6, 2 and 5). Each
    /// decodes to the stored picture turned and mirrored as its boxes say, sample for sample, at
    /// the size its header gives.
    @Test func heifContainersTurnAndMirrorTheStoredPicture() throws {
        func read(_ name: String) throws -> Image {
            let image = try ImageFile.read(path: Fixtures.path("images/" + name))
            let header = try ImageFile.header(path: Fixtures.path("images/" + name))
            #expect(header.width == image.width && header.height == image.height, "\(name)")
            return image
        }
        /// `image` with output sample (x, y) taken from input sample `source(x, y)`.
        func remapped(_ image: Image, width: Int, height: Int, _ source: (Int, Int) -> (Int, Int)) -> Image {
            var pixels = [Float](repeating: 0, count: image.channels * width * height)
            for c in 0..<image.channels {
                for y in 0..<height {
                    for x in 0..<width {
                        let (sx, sy) = source(x, y)
                        pixels[(c * height + y) * width + x] = image.pixels[(c * image.height + sy) * image.width + sx]
                    }
                }
            }
            return Image(width: width, height: height, channels: image.channels, pixels: pixels)
        }
        // EXIF 6: the stored picture turned a quarter clockwise. Turn it back to get the stored one.
        let upright = try read("rocket-rotated.heic")
        #expect(upright.width == 80 && upright.height == 120)
        let stored = remapped(upright, width: 120, height: 80) { x, y in (79 - y, x) }
        #expect(try read("rocket-rotated-ispe-first.heic") == upright)
        // EXIF 2: mirrored left to right. EXIF 5: mirrored about the main diagonal (transposed).
        #expect(try read("rocket-mirrored.heic") == remapped(stored, width: 120, height: 80) { x, y in (119 - x, y) })
        #expect(try read("rocket-transposed.heic") == remapped(stored, width: 80, height: 120) { x, y in (y, x) })
    }

    /// The walk to the primary item's properties stops at any box that runs past its parent, and
    /// finds the size, crop, rotation and mirror of well-formed files, in their order.
    @Test func heifPropertyParsingIsBoundsChecked() throws {
        func geometry(_ name: String) throws -> HEIF.Geometry? {
            try ImageFile.contents(of: Fixtures.path("images/" + name)).withUnsafeBytes { HEIF.primaryGeometry($0) }
        }
        let rotated = try ImageFile.contents(of: Fixtures.path("images/rocket-rotated.heic"))
        #expect(try geometry("rocket-rotated.heic") == HEIF.Geometry(coded: [120, 80], transforms: [.quarterTurns(3)]))
        #expect(try geometry("chelsea.heic") == HEIF.Geometry(coded: [160, 106], transforms: []))
        // Coded 64x64 by x265, cropped to the picture's 64x43 by a clean aperture.
        #expect(try geometry("chelsea-alpha.heic") == HEIF.Geometry(coded: [64, 64], transforms: [.crop(width: 64, height: 43)]))
        #expect(try geometry("rocket-transposed.heic")?.transforms.count == 2)
        #expect(try geometry("rocket-transposed.heic")?.decodedSize.map { [$0.width, $0.height] } == [80, 120])
        func box(_ type: String, _ body: [UInt8], size: Int? = nil) -> [UInt8] {
            let n = size ?? 8 + body.count
            return [UInt8(n >> 24 & 255), UInt8(n >> 16 & 255), UInt8(n >> 8 & 255), UInt8(n & 255)] + Array(type.utf8) + body
        }
        let cases: [[UInt8]] = [
            box("meta", [0, 0, 0, 0], size: 1 << 30),                                   // a meta box larger than the file
            box("meta", [0, 0, 0, 0] + box("pitm", [0, 0, 0, 0])),                       // pitm without its item id
            box("meta", [0, 0, 0, 0] + box("pitm", [0, 0, 0, 0, 0, 1]) + box("iprp", box("ipco", box("irot", [1])) + box("ipma", [0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 1, 9]))),
            Array(rotated.prefix(200)),                                                 // a file cut in its boxes
            // an ispe and a clap too short for their fields; a clap with a zero denominator
            box("meta", [0, 0, 0, 0] + box("pitm", [0, 0, 0, 0, 0, 1]) + box("iprp", box("ipco", box("ispe", [0, 0, 0, 0, 0, 0, 0, 9])) + box("ipma", [0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0x81]))),
            box("meta", [0, 0, 0, 0] + box("pitm", [0, 0, 0, 0, 0, 1]) + box("iprp", box("ipco", box("clap", [UInt8](repeating: 1, count: 31))) + box("ipma", [0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0x81]))),
            box("meta", [0, 0, 0, 0] + box("pitm", [0, 0, 0, 0, 0, 1]) + box("iprp", box("ipco", box("clap", [0, 0, 0, 9, 0, 0, 0, 0] + [UInt8](repeating: 1, count: 24))) + box("ipma", [0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0x81]))),
        ]
        #expect(cases.map { c in c.withUnsafeBytes { HEIF.primaryGeometry($0) } } == [nil, nil, nil, nil, nil, nil, nil])
        // The same item and property, associated: one quarter turn, and no coded size to turn.
        let good = box("meta", [0, 0, 0, 0] + box("pitm", [0, 0, 0, 0, 0, 1]) + box("iprp", box("ipco", box("irot", [1])) + box("ipma", [0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0x81])))
        #expect(good.withUnsafeBytes { HEIF.primaryGeometry($0) } == HEIF.Geometry(coded: nil, transforms: [.quarterTurns(1)]))
        #expect(good.withUnsafeBytes { HEIF.primaryGeometry($0) }?.decodedSize == nil)
    }

    @Test func exifOrientationParsingIsBoundsChecked() {
        // A TIFF header whose IFD offset points past the end, and one with an entry count that runs over.
        let cases: [[UInt8]] = [
            [0x49, 0x49, 42, 0, 0xFF, 0xFF, 0, 0],
            [0x4D, 0x4D, 0, 42, 0, 0, 0, 8, 0xFF, 0xFF, 0x01, 0x12],
            [0x49, 0x49, 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6],
        ]
        #expect(cases.map { c in c.withUnsafeBytes { EXIF.orientation(tiff: $0) } } == [1, 1, 1])
        let good: [UInt8] = [0x49, 0x49, 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]
        #expect(good.withUnsafeBytes { EXIF.orientation(tiff: $0) } == 6)
    }
}
