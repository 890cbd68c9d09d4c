import Foundation
import Testing
@testable import ImageIO

@Suite struct IDXTests {
    let images = Fixtures.path("idx/t10k-256-images-idx3-ubyte.gz")
    let labels = Fixtures.path("idx/t10k-256-labels-idx1-ubyte.gz")

    @Test func readsHeaders() throws {
        let file = try IDXFile(path: images)
        #expect(file.kind == .images(height: 28, width: 28))
        #expect(file.count == 256 && file.recordSize == 784 && file.recordShape == [28, 28])
        let labelFile = try IDXFile(path: labels)
        #expect(labelFile.kind == .labels && labelFile.count == 256 && labelFile.recordShape == [])
    }

    @Test func loadsTheFixturePair() throws {
        let data = try IDXFile.loadDataset(images: images, labels: labels)
        #expect(data.count == 256 && data.height == 28 && data.width == 28 && data.images.count == 256 * 784)
        // Fashion-MNIST's test set starts with an ankle boot, a pullover and two trousers.
        #expect(Array(data.labels.prefix(4)) == [9, 2, 1, 1])
        // The PNG fixtures are the same records; their names give the record index.
        let png = try PNG.read(Fixtures.path("fashion-mnist/Ankle_boot/0000.png"))
        #expect(png.pixels == data.images[0..<784].map { Float($0) / 255 })
    }

    @Test func readsPlainAndCompressedAlike() throws {
        let scratch = try ScratchFolder()
        let plain = scratch.file("plain-idx3-ubyte")
        let all = try IDXFile.loadImages(images)
        try writeIDX(plain, dims: [256, 28, 28], magic: 0x803, payload: all.images)
        let direct = try IDXFile.loadImages(plain)
        #expect(direct.images == all.images && direct.count == 256)
    }

    @Test func streamsRangesInAnyOrder() throws {
        let all = try IDXFile.loadImages(images).images
        let file = try IDXFile(path: images)
        for range in [10..<13, 200..<256, 0..<1, 100..<100, 5..<6] {
            #expect(try file.records(range) == Array(all[range.lowerBound * 784..<range.upperBound * 784]))
        }
        try file.validate()
        #expect(try file.records(255..<256) == Array(all[255 * 784..<256 * 784]))
    }

    @Test func rangeOutsideTheFile() throws {
        let file = try IDXFile(path: labels)
        #expect(imageIOError { _ = try file.records(250..<257) }?.message
            == "\(labels): records 250..<257 are outside the file's 256 records")
    }

    @Test func truncatedGzipStopsAtTheRecordWhereDataEnds() throws {
        let path = Fixtures.path("broken/truncated-images-idx3-ubyte.gz")
        let file = try IDXFile(path: path)
        // Records before the cut read fine: streaming only fails where the data ends.
        #expect(try file.records(0..<10).count == 7840)
        let expected = "\(path): data ends in record 153 of 256 (unexpected end of file): the header declares 256 images of 28x28 bytes (200704 bytes), the file holds 120582; record 153 has 630 of 784 bytes"
        #expect(imageIOError { _ = try IDXFile.loadImages(path) }?.message == expected)
        #expect(imageIOError { try IDXFile(path: path).validate() }?.message == expected)
        #expect(imageIOError { _ = try file.records(200..<256) }?.message == expected)
    }

    @Test func wrongMagic() {
        let path = Fixtures.path("broken/wrong-magic-idx3-ubyte")
        #expect(imageIOError { _ = try IDXFile(path: path) }?.message
            == "\(path): magic number 0x00000804 is neither an IDX image file (0x00000803) nor a label file (0x00000801)")
    }

    @Test func sizeDisagreesWithHeader() {
        let path = Fixtures.path("broken/short-images-idx3-ubyte")
        #expect(imageIOError { _ = try IDXFile(path: path) }?.message
            == "\(path): data ends in record 12 of 16: the header declares 16 images of 28x28 bytes (12544 bytes), the file holds 9800; record 12 has 392 of 784 bytes")
    }

    @Test func trailingDataIsAnError() throws {
        let scratch = try ScratchFolder()
        let plain = scratch.file("long-labels-idx1-ubyte")
        try writeIDX(plain, dims: [3], magic: 0x801, payload: [1, 2, 3, 4, 5])
        #expect(imageIOError { _ = try IDXFile(path: plain) }?.message
            == "\(plain): 2 bytes follow the last record: the header declares 3 labels of 1 byte (3 bytes), the file holds 5")
        // A compressed file can only be found out by reading it.
        let gz = scratch.file("long-labels-idx1-ubyte.gz")
        try gzipFile(plain, to: gz)
        let file = try IDXFile(path: gz)
        #expect(try file.records(0..<3) == [1, 2, 3])
        #expect(imageIOError { _ = try file.readAll() }?.message
            == "\(gz): 2 bytes follow the last record: the header declares 3 labels of 1 byte (3 bytes), the file holds 5")
    }

    @Test func headerCutShort() throws {
        let scratch = try ScratchFolder()
        let path = scratch.file("cut-idx3-ubyte")
        try Data([0, 0, 8, 3, 0, 0, 0, 5, 0, 0]).write(to: URL(fileURLWithPath: path))
        #expect(imageIOError { _ = try IDXFile(path: path) }?.message == "\(path): file ends inside the header (height)")
    }

    /// Found by the IDX fuzz harness: a header whose record count times record size overflows
    /// trapped while opening the file.
    @Test func headerDeclaringMoreThanAnyFileCanHold() {
        let path = Fixtures.path("fuzz/IDX/count-times-size-overflows-idx3-ubyte")
        #expect(imageIOError { _ = try IDXFile(path: path) }?.message
            == "\(path): the header declares 11382189 images of 2913840557x2913840557 bytes, more than any file can hold")
    }

    /// A compressed file's header is only checked against its data while reading, so reading must
    /// not allocate what the header claims before the data is there.
    @Test func compressedFileDeclaringHugeCountFailsWithoutAllocatingIt() throws {
        let scratch = try ScratchFolder()
        let plain = scratch.file("huge-images-idx3-ubyte")
        try writeIDX(plain, dims: [Int(Int32.max), 1000, 1000], magic: 0x803, payload: [1, 2, 3])
        let gz = scratch.file("huge-images-idx3-ubyte.gz")
        try gzipFile(plain, to: gz)
        let message = imageIOError { _ = try IDXFile.loadImages(gz) }?.message ?? ""
        #expect(message.hasPrefix("\(gz): data ends in record 0 of 2147483647"))
        #expect(message.hasSuffix("the file holds 3; record 0 has 3 of 1000000 bytes"))
    }

    @Test func labelCountDisagreesWithImageCount() {
        let short = Fixtures.path("broken/200-labels-idx1-ubyte.gz")
        #expect(imageIOError { _ = try IDXFile.loadDataset(images: images, labels: short) }?.message
            == "\(short): holds 200 labels but \(images) holds 256 images; expected one label per image")
    }

    @Test func filesSwapped() {
        #expect(imageIOError { _ = try IDXFile.loadDataset(images: labels, labels: images) }?.message
            == "\(labels): expected an IDX image file (magic 0x00000803), found a label file")
    }

    @Test func missingFile() {
        let path = Fixtures.path("idx/no-such-file.gz")
        #expect(imageIOError { _ = try IDXFile(path: path) }?.message == "\(path): cannot open: No such file or directory")
    }

    @Test(.enabled(if: Fixtures.hasFashionMNIST, "needs Debian's dataset-fashion-mnist in /usr/share/datasets/fashion-mnist"))
    func realTrainingSet() throws {
        let data = try IDXFile.loadDataset(
            images: Fixtures.fashionMNIST + "/train-images-idx3-ubyte.gz",
            labels: Fixtures.fashionMNIST + "/train-labels-idx1-ubyte.gz")
        #expect(data.count == 60_000 && data.height == 28 && data.width == 28)
        var perClass = [Int](repeating: 0, count: 10)
        for label in data.labels { perClass[Int(label)] += 1 }
        #expect(perClass == [Int](repeating: 6000, count: 10))
        let test = try IDXFile(path: Fixtures.fashionMNIST + "/t10k-images-idx3-ubyte.gz")
        #expect(test.count == 10_000)
        #expect(try test.records(0..<256) == IDXFile.loadImages(images).images)
    }
}

/// Writes an unsigned-byte IDX file (big-endian header, then `payload`).
func writeIDX(_ path: String, dims: [Int], magic: UInt32, payload: [UInt8]) throws {
    var bytes = withUnsafeBytes(of: magic.bigEndian) { Array($0) }
    for d in dims { bytes += withUnsafeBytes(of: UInt32(d).bigEndian) { Array($0) } }
    try Data(bytes + payload).write(to: URL(fileURLWithPath: path))
}

/// Compresses `source` into a gzip file with zlib's `gzwrite`.
func gzipFile(_ source: String, to destination: String) throws {
    let data = try Data(contentsOf: URL(fileURLWithPath: source))
    try writeGzip(data, to: destination)
}
