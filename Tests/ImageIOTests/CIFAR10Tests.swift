import Foundation
import Testing
@testable import ImageIO

@Suite struct CIFAR10Tests {
    /// Records whose label is `i % 10` and whose byte `k` is `(i * 7 + k) % 256`.
    static func records(_ count: Int) -> [UInt8] {
        var bytes = [UInt8]()
        for i in 0..<count {
            bytes.append(UInt8(i % 10))
            bytes += (0..<CIFAR10File.imageSize).map { UInt8((i * 7 + $0) % 256) }
        }
        return bytes
    }

    @Test func readsRecordsAndRanges() throws {
        let scratch = try ScratchFolder()
        let path = scratch.file("data_batch_1.bin")
        try Data(Self.records(12)).write(to: URL(fileURLWithPath: path))
        let file = try CIFAR10File(path: path)
        #expect(file.count == 12)
        let all = try file.records(0..<12)
        #expect(all.labels == (0..<12).map { UInt8($0 % 10) })
        #expect(all.images.count == 12 * 3072)
        let part = try file.records(11..<12)
        #expect(part.labels == [1] && part.images == (0..<3072).map { UInt8((77 + $0) % 256) })
        // CHW: the first 1024 bytes are the red plane; byte 1024 starts green.
        let tensor = try Image.tensor(bytes: part.images, shape: [1, 3, 32, 32], range: .unit)
        let image = try Image(tensor)
        #expect(image[1, 0, 0] == Float((77 + 1024) % 256) / 255)
        #expect(try file.records(3..<5).labels == [3, 4])
    }

    @Test func loadsSeveralBatchesCompressedOrNot() throws {
        let scratch = try ScratchFolder()
        try Data(Self.records(3)).write(to: URL(fileURLWithPath: scratch.file("a.bin")))
        try writeGzip(Data(Self.records(5)), to: scratch.file("b.bin.gz"))
        let both = try CIFAR10File.load([scratch.file("a.bin"), scratch.file("b.bin.gz")])
        #expect(both.labels == [0, 1, 2, 0, 1, 2, 3, 4])
        #expect(both.images.count == 8 * 3072)
        #expect(Array(both.images[(3 * 3072)..<(4 * 3072)]) == Array(Self.records(1)[1...]))
    }

    @Test func partialRecord() throws {
        let scratch = try ScratchFolder()
        let path = scratch.file("cut.bin")
        try Data(Self.records(10) + [3]).write(to: URL(fileURLWithPath: path))
        #expect(imageIOError { _ = try CIFAR10File(path: path) }?.message
            == "\(path): size 30731 bytes is not a whole number of 3073-byte records (1 label + 3x32x32 image): record 10 has 1 of 3073 bytes")
    }

    @Test func emptyFile() throws {
        let scratch = try ScratchFolder()
        let path = scratch.file("empty.bin")
        try Data().write(to: URL(fileURLWithPath: path))
        #expect(imageIOError { _ = try CIFAR10File(path: path) }?.message
            == "\(path): file is empty: expected records of 3073 bytes (1 label + 3x32x32 image)")
    }

    @Test func labelOutOfRange() throws {
        let scratch = try ScratchFolder()
        let path = scratch.file("bad-label.bin")
        var bytes = Self.records(4)
        bytes[2 * 3073] = 12
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let file = try CIFAR10File(path: path)
        #expect(try file.records(0..<2).labels == [0, 1])
        #expect(imageIOError { _ = try file.records(0..<4) }?.message == "\(path): record 2 has label 12; CIFAR-10 labels are 0 to 9")
    }

    @Test func truncatedGzip() throws {
        let scratch = try ScratchFolder()
        let whole = scratch.file("whole.bin.gz")
        try writeGzip(Data(Self.records(6)), to: whole)
        let data = try Data(contentsOf: URL(fileURLWithPath: whole))
        let cut = scratch.file("cut.bin.gz")
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: cut))
        let message = imageIOError { _ = try CIFAR10File(path: cut) }?.message ?? ""
        #expect(message.hasPrefix("\(cut): data ends after "))
        #expect(message.hasSuffix(" bytes (unexpected end of file)"))
    }
}
