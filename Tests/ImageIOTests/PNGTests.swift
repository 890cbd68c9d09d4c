import Testing
@testable import ImageIO

/// The sample values of Fixtures/png-types, as Scripts/make-fixtures.py writes them.
private func pattern(_ x: Int, _ y: Int) -> (gray: Int, rgb: [Int], alpha: Int) {
    let v = (x * 50 + y * 17) % 256
    return (v, [v, 255 - v, (3 * v) % 256], (x * 60 + y * 10) % 256)
}

private let typesWidth = 5, typesHeight = 3

@Suite struct PNGTests {
    @Test func readsGray8AtItsOwnDepth() throws {
        let image = try PNG.read(Fixtures.path("png-types/gray8.png"))
        #expect(image.width == typesWidth && image.height == typesHeight && image.channels == 1)
        for y in 0..<typesHeight { for x in 0..<typesWidth {
            #expect(image[0, y, x] == Float(pattern(x, y).gray) / 255)
        } }
    }

    @Test func readsOneBitGray() throws {
        let image = try PNG.read(Fixtures.path("png-types/gray1.png"))
        #expect(try PNG.info(Fixtures.path("png-types/gray1.png")) == PNG.Info(width: 5, height: 3, channels: 1, bitDepth: 8))
        for y in 0..<typesHeight { for x in 0..<typesWidth {
            #expect(image[0, y, x] == Float((x + y) % 2))
        } }
    }

    @Test func readsSixteenBitGrayExactly() throws {
        let path = Fixtures.path("png-types/gray16.png")
        #expect(try PNG.info(path).bitDepth == 16)
        let image = try PNG.read(path)
        for y in 0..<typesHeight { for x in 0..<typesWidth {
            #expect(image[0, y, x] == Float(pattern(x, y).gray * 257 + x) / 65535)
        } }
    }

    @Test func readsRGBAsRGBAndGray() throws {
        let path = Fixtures.path("png-types/rgb8.png")
        let rgb = try PNG.read(path)
        #expect(rgb.channels == 3)
        for y in 0..<typesHeight { for x in 0..<typesWidth { for c in 0..<3 {
            #expect(rgb[c, y, x] == Float(pattern(x, y).rgb[c]) / 255)
        } } }
        // libpng's luminance is computed in linear light; check it is a weighted mean, bounded by the channels.
        let gray = try PNG.read(path, channels: 1)
        for y in 0..<typesHeight { for x in 0..<typesWidth {
            let channels = (0..<3).map { rgb[$0, y, x] }
            #expect(gray[0, y, x] >= channels.min()! - 1.0 / 255 && gray[0, y, x] <= channels.max()! + 1.0 / 255)
        } }
    }

    @Test func graySourceReplicatesIntoRGBAndGainsOpaqueAlpha() throws {
        let image = try PNG.read(Fixtures.path("png-types/gray8.png"), channels: 4)
        for y in 0..<typesHeight { for x in 0..<typesWidth {
            let v = Float(pattern(x, y).gray) / 255
            #expect([image[0, y, x], image[1, y, x], image[2, y, x], image[3, y, x]] == [v, v, v, 1])
        } }
    }

    @Test func readsRGBAAndGrayAlphaKeepingStraightAlpha() throws {
        let rgba = try PNG.read(Fixtures.path("png-types/rgba8.png"))
        let ga = try PNG.read(Fixtures.path("png-types/gray-alpha8.png"))
        #expect(rgba.channels == 4 && ga.channels == 2)
        for y in 0..<typesHeight { for x in 0..<typesWidth {
            let p = pattern(x, y)
            #expect((0..<3).map { rgba[$0, y, x] } == p.rgb.map { Float($0) / 255 })
            #expect(rgba[3, y, x] == Float(p.alpha) / 255)
            #expect(ga[0, y, x] == Float(p.gray) / 255 && ga[1, y, x] == Float(p.alpha) / 255)
        } }
    }

    @Test func removingAlphaCompositesOntoBlack() throws {
        let rgb = try PNG.read(Fixtures.path("png-types/rgba8.png"), channels: 3)
        for y in 0..<typesHeight { for x in 0..<typesWidth {
            let p = pattern(x, y)
            for c in 0..<3 {
                // libpng composites in linear light; allow the 8-bit rounding of both conversions.
                let straight = Float(p.rgb[c]) / 255
                #expect(rgb[c, y, x] <= straight + 1.0 / 255)
                if p.alpha == 0 { #expect(rgb[c, y, x] == 0) }
                if p.alpha == 255 { #expect(rgb[c, y, x] == straight) }
            }
        } }
    }

    @Test func expandsPalettesWithAndWithoutTransparency() throws {
        let plain = try PNG.read(Fixtures.path("png-types/palette.png"))
        let transparent = try PNG.read(Fixtures.path("png-types/palette-trns.png"))
        #expect(plain.channels == 3 && transparent.channels == 4)
        for y in 0..<typesHeight { for x in 0..<typesWidth {
            let p = pattern(x, y)
            #expect((0..<3).map { plain[$0, y, x] } == p.rgb.map { Float($0) / 255 })
            #expect((0..<3).map { transparent[$0, y, x] } == p.rgb.map { Float($0) / 255 })
            #expect(transparent[3, y, x] == Float(p.alpha) / 255)
        } }
    }

    @Test(arguments: [1, 2, 3, 4])
    func eightBitRoundTripIsExact(channels: Int) throws {
        let scratch = try ScratchFolder()
        let (w, h) = (7, 5)
        let pixels = (0..<(w * h * channels)).map { Float(($0 * 37) % 256) / 255 }
        let image = Image(width: w, height: h, channels: channels, pixels: pixels)
        try PNG.write(image, to: scratch.file("a.png"))
        #expect(try PNG.info(scratch.file("a.png")) == PNG.Info(width: w, height: h, channels: channels, bitDepth: 8))
        #expect(try PNG.read(scratch.file("a.png")) == image)
    }

    @Test(arguments: [1, 3])
    func sixteenBitRoundTripIsExact(channels: Int) throws {
        let scratch = try ScratchFolder()
        let (w, h) = (6, 4)
        let pixels = (0..<(w * h * channels)).map { Float(($0 * 2_654_435) % 65536) / 65535 }
        let image = Image(width: w, height: h, channels: channels, pixels: pixels)
        try PNG.write(image, to: scratch.file("a.png"), bitDepth: .sixteen)
        #expect(try PNG.info(scratch.file("a.png")).bitDepth == 16)
        #expect(try PNG.read(scratch.file("a.png")) == image)
    }

    @Test func sixteenBitAlphaRoundTripsWhereAlphaIsOpaque() throws {
        // 16-bit alpha goes through libpng's associated-alpha form, so colour under partial alpha is
        // only as exact as colour * alpha / alpha; opaque and fully transparent pixels are exact.
        let scratch = try ScratchFolder()
        var image = Image(width: 3, height: 1, channels: 4, repeating: 0)
        for x in 0..<3 {
            image[0, 0, x] = Float(16_384) / 65535; image[1, 0, x] = Float(40_000) / 65535; image[2, 0, x] = 1
        }
        image[3, 0, 0] = 1; image[3, 0, 1] = 0.5; image[3, 0, 2] = 0
        try PNG.write(image, to: scratch.file("a.png"), bitDepth: .sixteen)
        let back = try PNG.read(scratch.file("a.png"))
        for c in 0..<4 { #expect(back[c, 0, 0] == image[c, 0, 0]) }
        for c in 0..<3 { #expect(abs(back[c, 0, 1] - image[c, 0, 1]) <= 2.0 / 65535) }
        #expect(back[3, 0, 1] == Float(32768) / 65535)
        #expect((0..<4).map { back[$0, 0, 2] } == [0, 0, 0, 0])
    }

    @Test func writingClampsAndRounds() throws {
        let scratch = try ScratchFolder()
        let image = Image(width: 4, height: 1, channels: 1, pixels: [-0.5, 1.5, 0.5, 0.499 / 255])
        try PNG.write(image, to: scratch.file("a.png"))
        #expect(try PNG.read(scratch.file("a.png")).pixels == [0, 1, 128.0 / 255, 0])
    }

    @Test func readsAFashionMNISTFixture() throws {
        let image = try PNG.read(Fixtures.path("fashion-mnist/Trouser/0002.png"))
        #expect(image.width == 28 && image.height == 28 && image.channels == 1)
        // Trouser 0002 is record 2 of the test set; compare with the IDX fixture's record.
        let idx = try IDXFile(path: Fixtures.path("idx/t10k-256-images-idx3-ubyte.gz"))
        let record = try idx.records(2..<3)
        #expect(image.pixels == record.map { Float($0) / 255 })
    }

    // MARK: broken files: the exact text a user sees

    @Test func truncatedFile() {
        let path = Fixtures.path("broken/truncated.png")
        #expect(imageIOError { _ = try PNG.read(path) }?.message == "\(path): read beyond end of data")
    }

    @Test func jpegWithPNGExtension() {
        let path = Fixtures.path("broken/jpeg-named.png")
        #expect(imageIOError { _ = try PNG.read(path) }?.message == "\(path): Not a PNG file")
        #expect(imageIOError { _ = try PNG.info(path) }?.message == "\(path): Not a PNG file")
    }

    @Test func flippedByteInIDAT() {
        let path = Fixtures.path("broken/flipped-idat.png")
        #expect(imageIOError { _ = try PNG.read(path) }?.message == "\(path): IDAT: invalid distance too far back")
    }

    @Test func badChunkChecksum() {
        let path = Fixtures.path("broken/bad-crc.png")
        #expect(imageIOError { _ = try PNG.read(path) }?.message == "\(path): IDAT: CRC error")
    }

    @Test func impossibleChannelCount() {
        let path = Fixtures.path("png-types/gray8.png")
        #expect(imageIOError { _ = try PNG.read(path, channels: 5) }?.message == "\(path): cannot read as 5 channels: images have 1 to 4")
    }

    @Test func missingFile() {
        let path = Fixtures.path("broken/no-such-file.png")
        #expect(imageIOError { _ = try PNG.read(path) }?.message == "\(path): cannot open: No such file or directory")
    }

    @Test func unwritableDestination() {
        let path = Fixtures.path("broken/no-such-folder/a.png")
        let image = Image(width: 1, height: 1, channels: 1, repeating: 0)
        #expect(imageIOError { try PNG.write(image, to: path) }?.message == "\(path): No such file or directory")
    }
}
