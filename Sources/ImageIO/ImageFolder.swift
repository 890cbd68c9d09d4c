import Foundation
import TensorRuntime

/// The PNG images under a folder, in a stable order, labelled by their first-level subfolder.
///
/// As torchvision's `ImageFolder`: classes are the names of the root's subfolders sorted by their
/// Unicode scalars (so `B` < `a`), class `k` is the `k`-th name, and every PNG file (by a
/// case-insensitive `.png` extension) at any depth under a class folder belongs to it. Files directly
/// in the root are not part of any class. With `labelled: false` every PNG under the root, at any
/// depth, is a sample with label 0. Names starting with `.` are skipped. Samples come depth-first,
/// each folder's entries sorted by Unicode scalars, so the order does not depend on the file system.
public struct ImageFolder: Sendable {
    /// One image file and its class index.
    public struct Sample: Equatable, Sendable {
        public var path: String
        public var label: Int
    }

    public let root: String
    /// Class names in label order; empty when not labelled.
    public let classes: [String]
    public let samples: [Sample]

    /// Scans `root`.
    ///
    /// - Throws: `ImageIOError` naming the folder when it does not exist, has no class subfolders,
    ///   a class folder holds no PNG file, or (unlabelled) no PNG file is found.
    public init(root: String, labelled: Bool = true) throws {
        self.root = root
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ImageIOError(path: root, "no such folder")
        }
        if !labelled {
            let files = try ImageFolder.pngFiles(under: root)
            guard !files.isEmpty else { throw ImageIOError(path: root, "no PNG images in this folder or below") }
            classes = []
            samples = files.map { Sample(path: $0, label: 0) }
            return
        }
        let entries = try ImageFolder.sortedEntries(root)
        let classNames = entries.filter { ImageFolder.isDirectory(root + "/" + $0) }
        guard !classNames.isEmpty else {
            throw ImageIOError(path: root, "no class subfolders: expected images in \(root)/<class name>/*.png")
        }
        var samples = [Sample]()
        for (label, name) in classNames.enumerated() {
            let files = try ImageFolder.pngFiles(under: root + "/" + name)
            guard !files.isEmpty else { throw ImageIOError(path: root + "/" + name, "class folder holds no PNG images") }
            samples += files.map { Sample(path: $0, label: label) }
        }
        classes = classNames
        self.samples = samples
    }

    public var count: Int { samples.count }

    /// Decodes sample `index` with `channels` channels (nil keeps the file's own).
    public func image(at index: Int, channels: Int? = nil) throws -> Image {
        try PNG.read(samples[index].path, channels: channels)
    }

    /// Decodes samples `indices`, applies `transform` to each, and stacks them into an
    /// `[N, C, H, W]` tensor in `range`, with their labels.
    ///
    /// - Throws: `ImageIOError` naming the first file whose size (after `transform`) differs from the
    ///   first image's, or any decoding error.
    public func batch(
        _ indices: [Int], channels: Int, range: PixelRange = .symmetric,
        transform: (Image) throws -> Image = { $0 }
    ) throws -> (images: Tensor, labels: [Int]) {
        guard let firstIndex = indices.first else { throw ImageIOError(path: root, "a batch needs at least one image") }
        let first = try transform(image(at: firstIndex, channels: channels))
        let (c, h, w) = (first.channels, first.height, first.width)
        let size = c * h * w
        let out = Tensor(uninitialized: [indices.count, c, h, w])
        var labels = [Int]()
        labels.reserveCapacity(indices.count)
        for (i, index) in indices.enumerated() {
            let item = i == 0 ? first : try transform(image(at: index, channels: channels))
            guard item.width == w, item.height == h, item.channels == c else {
                throw ImageIOError(path: samples[index].path,
                    "image is \(item.width)x\(item.height)x\(item.channels), expected \(w)x\(h)x\(c) like \(samples[firstIndex].path) (resize or crop the images to one size)")
            }
            let dst = out.data + i * size
            item.pixels.withUnsafeBufferPointer { src in
                for k in 0..<size { dst[k] = range.fromUnit(src[k]) }
            }
            labels.append(samples[index].label)
        }
        return (out, labels)
    }

    // MARK: - scanning

    private static func isDirectory(_ path: String) -> Bool {
        var flag: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &flag) && flag.boolValue
    }

    /// Visible entries of a folder, sorted by Unicode scalars (locale-independent, stable).
    private static func sortedEntries(_ folder: String) throws -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            throw ImageIOError(path: folder, "cannot list folder: \(error.localizedDescription)")
        }
        return names.filter { !$0.hasPrefix(".") }
            .sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
    }

    /// PNG files at any depth under `folder`, depth-first in sorted order.
    private static func pngFiles(under folder: String) throws -> [String] {
        var out = [String]()
        for name in try sortedEntries(folder) {
            let path = folder + "/" + name
            if isDirectory(path) {
                out += try pngFiles(under: path)
            } else if name.lowercased().hasSuffix(".png") {
                out.append(path)
            }
        }
        return out
    }
}
