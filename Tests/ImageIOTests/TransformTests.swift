import GANFlowTestSupport
import Testing
import TensorRuntime
@testable import ImageIO

/// An image whose samples are a fixed pseudo-random function of their index.
private func noise(width: Int, height: Int, channels: Int, seed: Int = 1) -> Image {
    Image(width: width, height: height, channels: channels,
          pixels: (0..<(width * height * channels)).map { Float((($0 + seed) * 2_654_435_761) % 1000) / 999 })
}

/// Area average computed by integrating the piecewise-constant image over each output pixel's
/// rectangle, pixel by pixel in 2-D (no separability assumed).
private func naiveArea(_ image: Image, width w: Int, height h: Int) -> Image {
    var out = Image(width: w, height: h, channels: image.channels, repeating: 0)
    let sx = Double(image.width) / Double(w), sy = Double(image.height) / Double(h)
    for c in 0..<image.channels { for y in 0..<h { for x in 0..<w {
        let (x0, x1, y0, y1) = (Double(x) * sx, Double(x + 1) * sx, Double(y) * sy, Double(y + 1) * sy)
        var sum = 0.0
        for v in 0..<image.height { for u in 0..<image.width {
            let ox = max(0, min(x1, Double(u + 1)) - max(x0, Double(u)))
            let oy = max(0, min(y1, Double(v + 1)) - max(y0, Double(v)))
            sum += ox * oy * Double(image[c, v, u])
        } }
        out[c, y, x] = Float(sum / (sx * sy))
    } } }
    return out
}

/// Bilinear interpolation with align_corners=False, written as the 2-D formula per output pixel.
private func naiveBilinear(_ image: Image, width w: Int, height h: Int) -> Image {
    var out = Image(width: w, height: h, channels: image.channels, repeating: 0)
    func coordinate(_ i: Int, _ n: Int, _ m: Int) -> (Int, Int, Double) {
        let s = max((Double(i) + 0.5) * Double(n) / Double(m) - 0.5, 0)
        let i0 = Int(s), i1 = min(i0 + 1, n - 1)
        return (i0, i1, s - Double(i0))
    }
    for c in 0..<image.channels { for y in 0..<h { for x in 0..<w {
        let (x0, x1, lx) = coordinate(x, image.width, w)
        let (y0, y1, ly) = coordinate(y, image.height, h)
        let top = (1 - lx) * Double(image[c, y0, x0]) + lx * Double(image[c, y0, x1])
        let bottom = (1 - lx) * Double(image[c, y1, x0]) + lx * Double(image[c, y1, x1])
        out[c, y, x] = Float((1 - ly) * top + ly * bottom)
    } } }
    return out
}

private func maxDifference(_ a: Image, _ b: Image) -> Float {
    #expect(a.width == b.width && a.height == b.height && a.channels == b.channels)
    return largestDifference(a.pixels, b.pixels)
}

@Suite struct TransformTests {
    @Test func halvingAveragesBlocks() throws {
        let image = Image(width: 4, height: 2, channels: 1, pixels: [0, 1, 2, 3, 4, 5, 6, 7])
        let small = try image.resized(width: 2, height: 1)
        let expected: [Float] = [2.5, 4.5]  // (0 + 1 + 4 + 5) / 4, (2 + 3 + 6 + 7) / 4
        #expect(small.pixels == expected)
    }

    @Test func doublingFollowsAlignCornersFalse() throws {
        // PyTorch: interpolate([0, 1], size=4, mode="linear", align_corners=False) = [0, .25, .75, 1].
        let image = Image(width: 2, height: 1, channels: 1, pixels: [0, 1])
        #expect(try image.resized(width: 4, height: 1).pixels == [0, 0.25, 0.75, 1])
    }

    @Test(arguments: [(28, 28, 14, 14), (48, 48, 32, 32), (31, 17, 10, 7), (20, 30, 13, 29)])
    func shrinkingMatchesExactAreaIntegration(w: Int, h: Int, tw: Int, th: Int) throws {
        let image = noise(width: w, height: h, channels: 3)
        #expect(maxDifference(try image.resized(width: tw, height: th), naiveArea(image, width: tw, height: th)) < 1e-5)
    }

    @Test(arguments: [(28, 28, 32, 32), (5, 3, 17, 11), (7, 7, 8, 21)])
    func enlargingMatchesBilinearFormula(w: Int, h: Int, tw: Int, th: Int) throws {
        let image = noise(width: w, height: h, channels: 2)
        #expect(maxDifference(try image.resized(width: tw, height: th), naiveBilinear(image, width: tw, height: th)) < 1e-5)
    }

    @Test func mixedDirectionsResampleEachAxisByItsRule() throws {
        // Shrink width (area), enlarge height (bilinear): compare with doing one axis at a time.
        let image = noise(width: 12, height: 4, channels: 1)
        let both = try image.resized(width: 5, height: 9)
        let reference = naiveBilinear(naiveArea(image, width: 5, height: 4), width: 5, height: 9)
        #expect(maxDifference(both, reference) < 1e-5)
    }

    @Test func constantsStayConstantAndSameSizeIsIdentity() throws {
        let flat = Image(width: 13, height: 9, channels: 3, repeating: 0.3)
        for (w, h) in [(4, 4), (30, 20), (13, 3)] {
            #expect(try flat.resized(width: w, height: h).pixels.allSatisfy { abs($0 - 0.3) < 1e-6 })
        }
        let image = noise(width: 6, height: 5, channels: 1)
        #expect(try image.resized(width: 6, height: 5) == image)
    }

    @Test func crops() throws {
        let image = Image(width: 4, height: 3, channels: 2, pixels: (0..<24).map(Float.init))
        let crop = try image.cropped(top: 1, left: 2, width: 2, height: 2)
        #expect(crop.pixels == [6, 7, 10, 11, 18, 19, 22, 23])
        #expect(try image.centerCropped(width: 2, height: 1).pixels == [5, 6, 17, 18])
        #expect(throws: TransformError("center crop of 5x1 does not fit in a 4x3 image")) {
            try image.centerCropped(width: 5, height: 1)
        }
        #expect(throws: TransformError("crop of 2x2 at row 2, column 0 does not fit in a 4x3 image")) {
            try image.cropped(top: 2, left: 0, width: 2, height: 2)
        }
    }

    @Test func randomCropsCoverEveryOffsetAndRepeatWithTheSeed() throws {
        let image = Image(width: 5, height: 4, channels: 1, pixels: (0..<20).map(Float.init))
        var rng = PhiloxRandom(seed: 3)
        var corners = Set<Float>()
        var first = [Float]()
        for _ in 0..<400 {
            let crop = try image.randomCropped(width: 3, height: 3, using: &rng)
            corners.insert(crop[0, 0, 0])
            // Every crop is a contiguous window of the source.
            let top = Int(crop[0, 0, 0]) / 5, left = Int(crop[0, 0, 0]) % 5
            #expect(crop == (try image.cropped(top: top, left: left, width: 3, height: 3)))
            first.append(crop[0, 0, 0])
        }
        #expect(corners == [0, 1, 2, 5, 6, 7])
        var again = PhiloxRandom(seed: 3)
        let repeated = try (0..<400).map { _ in try image.randomCropped(width: 3, height: 3, using: &again)[0, 0, 0] }
        #expect(repeated == first)
    }

    @Test func padding() throws {
        let image = Image(width: 2, height: 1, channels: 1, pixels: [0.5, 0.25])
        let p = try image.padded(top: 1, left: 0, bottom: 0, right: 1, value: 1)
        #expect(p.width == 3 && p.height == 2 && p.pixels == [1, 1, 1, 0.5, 0.25, 1])
        let fashion = try PNG.read(Fixtures.path("fashion-mnist/Coat/0006.png"))
        let big = try fashion.padded(toWidth: 32, height: 32)
        #expect(big.width == 32 && big.height == 32)
        #expect(try big.cropped(top: 2, left: 2, width: 28, height: 28) == fashion)
        #expect(big.pixels.reduce(0, +) == fashion.pixels.reduce(0, +))
        #expect(throws: TransformError("cannot pad a 2x1 image to the smaller 1x1")) { try image.padded(toWidth: 1, height: 1) }
    }

    @Test func channelConversions() throws {
        let gray = Image(width: 2, height: 1, channels: 1, pixels: [0.2, 0.8])
        let rgb = try gray.converted(toChannels: 3)
        #expect(rgb.pixels == [0.2, 0.8, 0.2, 0.8, 0.2, 0.8])
        #expect(try gray.converted(toChannels: 2).pixels == [0.2, 0.8, 1, 1])
        let color = Image(width: 1, height: 1, channels: 4, pixels: [1, 0.5, 0, 0.25])
        let luma = try color.converted(toChannels: 1)
        #expect(abs(luma.pixels[0] - (0.299 + 0.587 * 0.5)) < 1e-6)
        #expect(try color.converted(toChannels: 3).pixels == [1, 0.5, 0])
        #expect(try color.converted(toChannels: 2).pixels[1] == 0.25)
        #expect(try rgb.converted(toChannels: 1).pixels.enumerated().allSatisfy { abs($1 - gray.pixels[$0]) < 1e-6 })
    }

    @Test func pixelRanges() throws {
        let image = Image(width: 3, height: 1, channels: 1, pixels: [0, 0.5, 1])
        #expect(image.tensor(range: .symmetric).scalars == [-1, 0, 1])
        #expect(image.tensor(range: .unit).scalars == [0, 0.5, 1])
        let bytes = try Image.tensor(bytes: [0, 51, 255], shape: [1, 1, 1, 3], range: .symmetric)
        #expect(bytes.scalars == [-1, 2 * (51 / 255) - 1, 1])
        let batch = try Image.batch([image, image])
        #expect(batch.shape == [2, 1, 1, 3])
    }
}

@Suite struct SampleGridTests {
    @Test func laysOutLikeMakeGrid() throws {
        // Five 2x2 gray samples, 3 per row, padding 1: 3 * (2 + 1) + 1 = 10 wide, 2 * 3 + 1 = 7 high.
        let values: [Float] = (0..<5).flatMap { k in [Float](repeating: Float(k) / 2 - 1, count: 4) }
        let batch = try Tensor(shape: [5, 1, 2, 2], scalars: values)
        let grid = try SampleGrid.compose(batch, nrow: 3, padding: 1, padValue: 0.5)
        #expect(grid.width == 10 && grid.height == 7 && grid.channels == 1)
        for k in 0..<5 {
            let top = 1 + (k / 3) * 3, left = 1 + (k % 3) * 3
            for y in 0..<2 { for x in 0..<2 { #expect(grid[0, top + y, left + x] == min(Float(k) / 4, 1)) } }
        }
        // Borders and the empty sixth cell are padValue.
        #expect(grid[0, 0, 0] == 0.5 && grid[0, 3, 4] == 0.5 && grid[0, 5, 8] == 0.5)
        let padCount = grid.pixels.filter { $0 == 0.5 }.count
        #expect(padCount == 70 - 5 * 4 + 4)  // sample 2 maps to 0.5 as well
    }

    @Test func clampsAndKeepsColour() throws {
        let batch = try Tensor(shape: [1, 3, 1, 1], scalars: [-3, 0, 3])
        let grid = try SampleGrid.compose(batch, nrow: 8, padding: 0)
        #expect(grid.pixels == [0, 0.5, 1])
    }

    @Test func writesEightAndSixteenBitPNGs() throws {
        let scratch = try ScratchFolder()
        var rng = PhiloxRandom(seed: 11)
        let batch = Tensor(randomUniform: [6, 3, 8, 8], low: -1, high: 1, using: &rng)
        let grid = try SampleGrid.compose(batch, nrow: 4)
        try SampleGrid.write(batch, to: scratch.file("g8.png"), nrow: 4)
        try SampleGrid.write(batch, to: scratch.file("g16.png"), nrow: 4, bitDepth: .sixteen)
        let eight = try PNG.read(scratch.file("g8.png")), sixteen = try PNG.read(scratch.file("g16.png"))
        #expect(eight.width == 4 * 10 + 2 && eight.height == 2 * 10 + 2 && eight.channels == 3)
        #expect(maxDifference(eight, grid) <= 0.5 / 255 + 1e-6)
        #expect(maxDifference(sixteen, grid) <= 0.5 / 65535 + 1e-7)
    }

    @Test func rejectsNonImageBatches() throws {
        #expect(throws: TensorError("a sample grid needs an [N, C, H, W] batch with N > 0 and C of 1, 3 or 4, not [2, 2, 4, 4]")) {
            try SampleGrid.compose(Tensor(zeros: [2, 2, 4, 4]))
        }
    }
}
