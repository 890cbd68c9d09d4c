import Foundation
import Testing
@testable import ImageIO

@Suite struct ImageFolderTests {
    let fashion = Fixtures.path("fashion-mnist")

    @Test func labelsFollowSortedClassFolders() throws {
        let folder = try ImageFolder(root: fashion)
        #expect(folder.classes == ["Ankle_boot", "Bag", "Coat", "Dress", "Pullover", "Sandal", "Shirt", "Sneaker", "T-shirt_top", "Trouser"])
        #expect(folder.count == 300)
        #expect(folder.samples[0] == .init(path: fashion + "/Ankle_boot/0000.png", label: 0))
        #expect(folder.samples[299].label == 9 && folder.samples[299].path.hasPrefix(fashion + "/Trouser/"))
        // Within a class, files in name order.
        let bags = folder.samples.filter { $0.label == 1 }.map(\.path)
        #expect(bags == bags.sorted() && bags.count == 30)
        // Scanning twice gives the same order.
        #expect(try ImageFolder(root: fashion).samples == folder.samples)
    }

    @Test func scansNestedFoldersInAStableOrder() throws {
        let scratch = try ScratchFolder()
        let one = Image(width: 1, height: 1, channels: 1, repeating: 0.5)
        let fm = FileManager.default
        for dir in ["b/z", "b/a", "B", "a", ".hidden"] { try fm.createDirectory(atPath: scratch.file(dir), withIntermediateDirectories: true) }
        for file in ["b/z/1.png", "b/a/2.PNG", "b/0.png", "B/x.png", "a/y.png", ".hidden/h.png", "root.png"] {
            try PNG.write(one, to: scratch.file(file))
        }
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: scratch.file("a/notes.txt")))
        let folder = try ImageFolder(root: scratch.path)
        #expect(folder.classes == ["B", "a", "b"])
        #expect(folder.samples == [
            .init(path: scratch.file("B/x.png"), label: 0),
            .init(path: scratch.file("a/y.png"), label: 1),
            .init(path: scratch.file("b/0.png"), label: 2),
            .init(path: scratch.file("b/a/2.PNG"), label: 2),
            .init(path: scratch.file("b/z/1.png"), label: 2),
        ])
        // The image in the root belongs to no class: left out, and said so.
        #expect(folder.outsideClasses == ["root.png"])
        #expect(folder.notes == ["left out 1 image in the root folder, outside every class folder (reading without labels takes them): root.png"])
        let unlabelled = try ImageFolder(root: scratch.path, labelled: false)
        #expect(unlabelled.classes.isEmpty)
        #expect(unlabelled.samples.map(\.path) == ["B/x.png", "a/y.png", "b/0.png", "b/a/2.PNG", "b/z/1.png", "root.png"].map(scratch.file))
        #expect(unlabelled.outsideClasses.isEmpty && unlabelled.notes.isEmpty)
    }

    @Test func linksBackToAParentAreNotEntered() throws {
        // A link back to a parent (as `ln -s .. loop` makes) was followed without end: the scan
        // read loop/loop/loop/... until the path grew too long, serving every image dozens of times.
        let scratch = try ScratchFolder()
        let fm = FileManager.default
        let one = Image(width: 1, height: 1, channels: 1, repeating: 0.5)
        try fm.createDirectory(atPath: scratch.file("cats/2024"), withIntermediateDirectories: true)
        try fm.createDirectory(atPath: scratch.file("dogs"), withIntermediateDirectories: true)
        for file in ["cats/1.png", "cats/2024/2.png", "dogs/3.png"] { try PNG.write(one, to: scratch.file(file)) }
        try fm.createSymbolicLink(atPath: scratch.file("cats/2024/loop"), withDestinationPath: "..")
        try fm.createSymbolicLink(atPath: scratch.file("dogs/root"), withDestinationPath: scratch.path)
        // A link to a folder that does not hold it is followed, as before.
        try fm.createSymbolicLink(atPath: scratch.file("dogs/cats"), withDestinationPath: "../cats")
        let unlabelled = try ImageFolder(root: scratch.path, labelled: false)
        #expect(unlabelled.samples.map(\.path) == ["cats/1.png", "cats/2024/2.png", "dogs/3.png", "dogs/cats/1.png", "dogs/cats/2024/2.png"].map(scratch.file))
        #expect(unlabelled.loops == ["cats/2024/loop", "dogs/cats/2024/loop", "dogs/root"])
        #expect(unlabelled.notes == ["did not enter 3 symbolic links back to a folder holding them (a loop): cats/2024/loop, dogs/cats/2024/loop, dogs/root"])
        let labelled = try ImageFolder(root: scratch.path)
        #expect(labelled.classes == ["cats", "dogs"])
        #expect(labelled.samples.map(\.label) == [0, 0, 1, 1, 1])
    }

    @Test func batchesDecodeTransformAndLabel() throws {
        let folder = try ImageFolder(root: fashion)
        let (images, labels) = try folder.batch([0, 30, 299], channels: 1) { try $0.padded(toWidth: 32, height: 32) }
        #expect(images.shape == [3, 1, 32, 32] && labels == [0, 1, 9])
        let direct = try PNG.read(fashion + "/Bag/" + (folder.samples[30].path.split(separator: "/").last.map(String.init) ?? ""))
        let item = try Image(images, index: 1)
        #expect(item[0, 0, 0] == -1)  // padding in [-1, 1]
        #expect(item[0, 2 + 14, 2 + 14] == 2 * direct[0, 14, 14] - 1)
    }

    @Test func mixedSizesNameTheOddFile() throws {
        let root = Fixtures.path("broken/mixed-sizes")
        let folder = try ImageFolder(root: root)
        #expect(folder.classes == ["a", "b"])
        #expect(imageIOError { _ = try folder.batch(Array(0..<4), channels: 1) }?.message
            == "\(root)/b/0.png: image is 32x32x1, expected 28x28x1 like \(root)/a/0.png (resize or crop the images to one size)")
        // Resizing in the transform makes them one size.
        let (images, _) = try folder.batch(Array(0..<4), channels: 1) { try $0.resized(width: 28, height: 28) }
        #expect(images.shape == [4, 1, 28, 28])
    }

    @Test func emptyFolder() throws {
        let scratch = try ScratchFolder()
        #expect(imageIOError { _ = try ImageFolder(root: scratch.path) }?.message
            == "\(scratch.path): no class subfolders: expected images in \(scratch.path)/<class name>/ (set \"labels\": false to read a folder without classes)")
        #expect(imageIOError { _ = try ImageFolder(root: scratch.path, labelled: false) }?.message
            == "\(scratch.path): no images (jpg, jpeg, jpe, jfif, png, webp, heic, heif, hif, avif) in this folder or below")
    }

    @Test func classFolderWithoutImages() throws {
        let scratch = try ScratchFolder()
        try FileManager.default.createDirectory(atPath: scratch.file("cats"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: scratch.file("dogs/puppies"), withIntermediateDirectories: true)
        try PNG.write(Image(width: 1, height: 1, channels: 1, repeating: 0), to: scratch.file("cats/1.png"))
        #expect(imageIOError { _ = try ImageFolder(root: scratch.path) }?.message
            == "\(scratch.file("dogs")): class folder holds no images (jpg, jpeg, jpe, jfif, png, webp, heic, heif, hif, avif)")
    }

    @Test func missingFolder() {
        let path = Fixtures.path("no-such-folder")
        #expect(imageIOError { _ = try ImageFolder(root: path) }?.message == "\(path): no such folder or file")
    }

    @Test func photoPatchesAreRGB64() throws {
        let folder = try ImageFolder(root: Fixtures.path("photos/patches"))
        #expect(folder.classes == ["astronaut", "chelsea", "coffee", "hubble_deep_field", "rocket"])
        #expect(folder.count >= 100)
        let (images, _) = try folder.batch(Array(0..<8), channels: 3)
        #expect(images.shape == [8, 3, 64, 64])
    }

    // MARK: - folders as people keep them

    @Test func photoFolderIsRecursiveSkipsLitterAndDecodesByContent() throws {
        let root = Fixtures.path("images/folder")
        let folder = try ImageFolder(root: root)
        #expect(folder.classes == ["cat", "cup", "space"])
        #expect(folder.samples == [
            .init(path: root + "/cat/2019/IMG_0002.jpeg", label: 0),
            .init(path: root + "/cat/IMG_0001.JPG", label: 0),
            .init(path: root + "/cup/coffee.jpg", label: 1),
            .init(path: root + "/cup/coffee.webp", label: 1),
            .init(path: root + "/space/astronaut.jpg", label: 2),
            .init(path: root + "/space/hubble.png", label: 2),
            .init(path: root + "/space/rocket.jpg", label: 2),
        ])
        #expect(folder.skipped == [".DS_Store", "cat/notes.txt", "cup/Thumbs.db"])
        let headers = try (0..<folder.count).map { try folder.header(at: $0) }
        #expect(headers.map(\.format) == [.jpeg, .jpeg, .jpeg, .webp, .jpeg, .png, .jpeg])
        #expect(headers[0].width == 32 && headers[0].height == 48)  // EXIF orientation 6
        let unlabelled = try ImageFolder(root: root, labelled: false)
        #expect(unlabelled.count == 7 && !unlabelled.hasLabels && unlabelled.classes.isEmpty)
        let onlyWebP = try ImageFolder(root: root, labelled: false, extensions: ["WEBP"])
        #expect(onlyWebP.samples.map(\.path) == [root + "/cup/coffee.webp"])
        #expect(onlyWebP.skipped.count == 9)
    }

    @Test func zipArchiveWithStyleGANLabelsIsReadInPlace() throws {
        let zip = Fixtures.path("images/stylegan-dataset.zip")
        let folder = try ImageFolder(root: zip)
        #expect(folder.hasLabels && folder.classes == ["0", "1", "2"])
        #expect(folder.samples == [
            .init(path: zip + "/img/00000/img00000000.jpg", label: 1),
            .init(path: zip + "/img/00000/img00000001.webp", label: 0),
            .init(path: zip + "/img/00000/img00000002.jpg", label: 2),
        ])
        #expect(try folder.bytes(at: 0) == ImageFile.contents(of: Fixtures.path("images/chelsea-baseline.jpg")))
        let decoded = try folder.image(at: 1, channels: 3)
        #expect(decoded == (try ImageFile.read(path: Fixtures.path("images/coffee-lossy.webp"))))
        // Unlabelled, dataset.json is metadata, not a skipped file.
        let plain = try ImageFolder(root: zip, labelled: false)
        #expect(plain.count == 3 && plain.skipped.isEmpty)
    }

    @Test func datasetJSONLabelsAndTheirErrors() throws {
        let scratch = try ScratchFolder()
        let fm = FileManager.default
        try fm.createDirectory(atPath: scratch.file("00000"), withIntermediateDirectories: true)
        for i in 0..<3 { try fm.copyItem(atPath: Fixtures.path("images/chelsea-exif\(i + 1).jpg"), toPath: scratch.file("00000/img\(i).jpg")) }
        func write(_ json: String) throws { try Data(json.utf8).write(to: URL(fileURLWithPath: scratch.file("dataset.json"))) }
        try write(#"{"labels": [["00000/img0.jpg", 4], ["00000\\img1.jpg", 0], ["00000/img2.jpg", 2]]}"#)
        let folder = try ImageFolder(root: scratch.path)
        #expect(folder.samples.map(\.label) == [4, 0, 2] && folder.classes.count == 5)
        try write(#"{"labels": null}"#)
        #expect(try !ImageFolder(root: scratch.path).hasLabels)
        try write(#"{"labels": [["00000/img0.jpg", 4]]}"#)
        #expect(imageIOError { _ = try ImageFolder(root: scratch.path) }?.message == scratch.file("dataset.json") + ": no label for '00000/img1.jpg'")
        try write(#"{"labels": [["00000/img0.jpg", -1]]}"#)
        #expect(imageIOError { _ = try ImageFolder(root: scratch.path) }?.message == scratch.file("dataset.json") + #": labels[0]: expected ["file", non-negative integer label]"#)
        try write("{")
        #expect(imageIOError { _ = try ImageFolder(root: scratch.path) }?.message == scratch.file("dataset.json") + ": not valid JSON")
    }

    @Test func zipEntryWithABadCRCNamesTheArchiveAndEntry() throws {
        let zip = Fixtures.path("images/broken/bad-crc.zip")
        let folder = try ImageFolder(root: zip, labelled: false)
        _ = try folder.image(at: 0)
        #expect(imageIOError { _ = try folder.image(at: 1) } == ImageIOError(path: zip, "entry 'img/00000/img00000001.webp': CRC error"))
    }

    @Test func aTruncatedZIPSaysItsEndIsMissing() throws {
        // The first half of the StyleGAN2-ADA archive: local headers, no central directory.
        let scratch = try ScratchFolder(), cut = scratch.file("cut.zip")
        let whole = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("images/stylegan-dataset.zip")))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: cut))
        #expect(imageIOError { _ = try ImageFolder(root: cut) }?.message
            == "\(cut): cannot open ZIP archive: Not a zip archive (it starts as one, so its end, the central directory, is missing: a truncated file?)")
    }

    @Test func notAFolderOrArchive() {
        let path = Fixtures.path("images/chelsea-baseline.jpg")
        #expect(imageIOError { _ = try ImageFolder(root: path) }?.message == "\(path): not a folder or a ZIP archive")
    }
}
