import Foundation
import TensorRuntime

/// The images under a folder, or in a ZIP archive, in a stable order, with their labels.
///
/// Files are found at any depth and taken for images by their extension (`extensions`,
/// case-insensitive); every other file (`.DS_Store`, `Thumbs.db`, notes) is skipped and listed in
/// `skipped`, never an error. Which decoder reads an image is decided by its content, not its name.
///
/// Labels, when asked for, come from a `dataset.json` at the root (as StyleGAN2-ADA's
/// `dataset_tool.py` writes it: `{"labels": [["00000/img00000000.png", 6], ...]}`, paths relative to
/// the root; `"labels": null` means none) or else, as torchvision's `ImageFolder`, from the root's
/// subfolders: classes are their names sorted by Unicode scalars (so `B` < `a`), class `k` is the
/// `k`-th name, and every image at any depth under a class folder belongs to it (images directly in
/// the root belong to none). Unlabelled, every image below the root is a sample with label 0.
/// Hidden folders (names starting with `.`) are not entered. Symbolic links are followed, except a
/// link back to a folder that holds it (a loop), which is listed in `loops`. Samples come
/// depth-first, each folder's entries sorted by Unicode scalars, so the order does not depend on
/// the file system.
public struct ImageFolder: Sendable {
    /// One image file and its class index.
    public struct Sample: Equatable, Sendable {
        /// The file, or `archive.zip/entry` for an archive's entry.
        public var path: String
        public var label: Int
    }

    public let root: String
    /// Class names in label order; empty when not labelled.
    public let classes: [String]
    public let samples: [Sample]
    /// Whether the samples carry labels.
    public let hasLabels: Bool
    /// Files below the root that are not images by their extension, in scan order.
    public let skipped: [String]
    /// Folders below the root that were not entered because they lead back to a folder holding
    /// them (a symbolic link to a parent), which would otherwise be read without end.
    public let loops: [String]
    /// Images directly in the root of a folder labelled by its subfolders, which belong to no class
    /// and are left out (as torchvision's `ImageFolder` leaves them, but listed).
    public let outsideClasses: [String]
    /// The archive the samples are read from, when the root is a ZIP file.
    private let archive: ZipArchive?
    /// Each sample's archive entry (parallel to `samples`), for an archive.
    private let entries: [ZipArchive.Entry]

    /// Scans `root`, a folder or a ZIP archive.
    ///
    /// - Throws: `ImageIOError` naming the folder when it does not exist, holds no image, has no
    ///   class subfolders, a class folder holds no image, or `dataset.json` is malformed or lacks
    ///   a label for an image.
    public init(root: String, labelled: Bool = true, extensions: [String] = ImageFile.defaultExtensions) throws {
        self.root = root
        let wanted = Set(extensions.map { $0.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: ".")) })
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory) else {
            throw ImageIOError(path: root, "no such folder or file")
        }
        // Every file below the root, relative to it, depth-first in sorted order.
        var files: [String] = []
        var entryByName: [String: ZipArchive.Entry] = [:]
        var loops: [String] = []
        if isDirectory.boolValue {
            archive = nil
            try ImageFolder.scan(root, relative: "", enclosing: Set([FolderIdentity(root)].compactMap { $0 }),
                                 into: &files, loops: &loops)
        } else if ZipArchive.isArchive(root) {
            let zip = try ZipArchive(path: root)
            archive = zip
            for e in zip.entries { entryByName[e.name] = e }
            files = ImageFolder.sortedArchivePaths(zip.entries.map(\.name))
        } else {
            throw ImageIOError(path: root, "not a folder or a ZIP archive")
        }
        var images = [String]()
        var skipped = [String]()
        for f in files where f != "dataset.json" {
            let ext = (f as NSString).pathExtension.lowercased()
            if wanted.contains(ext) { images.append(f) } else { skipped.append(f) }
        }
        self.skipped = skipped
        self.loops = loops
        let kinds = "images (" + extensions.joined(separator: ", ") + ")"
        let noImages = ImageIOError(path: root, "no \(kinds) in this folder or below")

        var relative: [(String, Int)]
        var classes: [String] = []
        var outside: [String] = []
        var hasLabels = labelled
        if labelled, files.contains("dataset.json") {
            guard !images.isEmpty else { throw noImages }
            let json = try archive.map { try $0.read(entryByName["dataset.json"]!) }
                ?? ImageFile.contents(of: root + "/dataset.json")
            let labels = try ImageFolder.datasetLabels(json, path: root + "/dataset.json")
            if let labels {
                relative = try images.map { name in
                    guard let label = labels[name] else {
                        throw ImageIOError(path: root + "/dataset.json", "no label for '\(name)'")
                    }
                    return (name, label)
                }
                classes = (0...(labels.values.max() ?? 0)).map(String.init)
            } else {
                hasLabels = false
                relative = images.map { ($0, 0) }
            }
        } else if labelled {
            // First-level folders, in sorted order, that hold at least one file at any depth.
            var names = [String]()
            for f in files where f.contains("/") {
                let top = String(f[..<f.firstIndex(of: "/")!])
                if names.last != top { names.append(top) }
            }
            if isDirectory.boolValue {
                // Empty class folders hold no file, so `files` does not show them: list the root itself.
                names = try ImageFolder.sortedEntries(root).filter { !$0.hasPrefix(".") && ImageFolder.isDirectory(root + "/" + $0) }
            }
            guard !names.isEmpty else {
                throw ImageIOError(path: root, "no class subfolders: expected images in \(root)/<class name>/ (set \"labels\": false to read a folder without classes)")
            }
            var byClass = [[String]](repeating: [], count: names.count)
            let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
            for f in images {
                guard let slash = f.firstIndex(of: "/"), let k = index[String(f[..<slash])] else {
                    outside.append(f)
                    continue
                }
                byClass[k].append(f)
            }
            for (k, name) in names.enumerated() where byClass[k].isEmpty {
                throw ImageIOError(path: root + "/" + name, "class folder holds no \(kinds)")
            }
            relative = byClass.enumerated().flatMap { k, list in list.map { ($0, k) } }
            classes = names
        } else {
            guard !images.isEmpty else { throw noImages }
            relative = images.map { ($0, 0) }
        }
        self.classes = hasLabels ? classes : []
        outsideClasses = outside
        self.hasLabels = hasLabels
        samples = relative.map { Sample(path: root + "/" + $0.0, label: $0.1) }
        entries = archive == nil ? [] : relative.map { entryByName[$0.0]! }
    }

    public var count: Int { samples.count }

    /// What the scan left out besides files that are not images, one line each, for a run's or a
    /// preparation's closing report: symbolic-link loops not entered, and images outside every class.
    public var notes: [String] {
        var lines = [String]()
        if !loops.isEmpty {
            let n = loops.count
            lines.append("did not enter \(n) symbolic link\(n == 1 ? "" : "s") back to a folder holding \(n == 1 ? "it" : "them") (a loop): "
                + loops.joined(separator: ", "))
        }
        if !outsideClasses.isEmpty {
            let n = outsideClasses.count
            lines.append("left out \(n) image\(n == 1 ? "" : "s") in the root folder, outside every class folder (reading without labels takes them): "
                + outsideClasses.joined(separator: ", "))
        }
        return lines
    }

    /// The file bytes of sample `index` (read from the folder or the archive).
    public func bytes(at index: Int) throws -> [UInt8] {
        if let archive { return try archive.read(entries[index]) }
        return try ImageFile.contents(of: samples[index].path)
    }

    /// Decodes sample `index`.
    public func image(at index: Int, options: ImageDecodeOptions) throws -> Image {
        try ImageFile.decode(bytes: try bytes(at: index), path: samples[index].path, options: options)
    }

    /// Decodes sample `index` with `channels` channels (nil keeps the file's own).
    public func image(at index: Int, channels: Int? = nil) throws -> Image {
        try image(at: index, options: ImageDecodeOptions(channels: channels))
    }

    /// The header of sample `index`.
    public func header(at index: Int) throws -> ImageHeader {
        try ImageFile.header(bytes: try bytes(at: index), path: samples[index].path)
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

    private static func precedes(_ a: String, _ b: String) -> Bool {
        a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
    }

    /// Entries of a folder, sorted by Unicode scalars (locale-independent, stable).
    private static func sortedEntries(_ folder: String) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: folder).sorted(by: precedes)
        } catch {
            throw ImageIOError(path: folder, "cannot list folder: \(error.localizedDescription)")
        }
    }

    /// A folder's device and inode, as `stat` gives them through symbolic links.
    private struct FolderIdentity: Hashable {
        var device: UInt64
        var inode: UInt64

        init?(_ path: String) {
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
        }
    }

    /// Appends the files at any depth under `folder` (paths relative to the scan's root) to `out`,
    /// depth-first in sorted order. Hidden folders are not entered; nor is a folder among
    /// `enclosing` (the folders holding this one, the root included), which goes to `loops`.
    private static func scan(_ folder: String, relative: String, enclosing: Set<FolderIdentity>,
                             into out: inout [String], loops: inout [String]) throws {
        for name in try sortedEntries(folder) {
            let path = folder + "/" + name
            let rel = relative.isEmpty ? name : relative + "/" + name
            if isDirectory(path) {
                guard !name.hasPrefix(".") else { continue }
                var inner = enclosing
                if let id = FolderIdentity(path), !inner.insert(id).inserted {
                    loops.append(rel)
                    continue
                }
                try scan(path, relative: rel, enclosing: inner, into: &out, loops: &loops)
            } else {
                out.append(rel)
            }
        }
    }

    /// An archive's file names in the order a folder scan gives: depth-first, each level sorted,
    /// hidden folders (and macOS's `__MACOSX` resource forks) left out.
    private static func sortedArchivePaths(_ names: [String]) -> [String] {
        let visible = names.filter { name in
            let parts = name.split(separator: "/")
            return !parts.dropLast().contains { $0.hasPrefix(".") || $0 == "__MACOSX" }
        }
        // Comparing component lists gives depth-first order with each level sorted, except that a
        // folder's files must come where the folder's name sorts among its siblings (as in a scan).
        return visible.sorted { a, b in
            let pa = a.split(separator: "/").map(String.init), pb = b.split(separator: "/").map(String.init)
            for (x, y) in zip(pa, pb) where x != y { return precedes(x, y) }
            return pa.count < pb.count
        }
    }

    /// Labels from a StyleGAN2-ADA `dataset.json`: a name-to-label map, or nil for `"labels": null`.
    static func datasetLabels(_ bytes: [UInt8], path: String) throws -> [String: Int]? {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        } catch {
            throw ImageIOError(path: path, "not valid JSON")
        }
        guard let top = object as? [String: Any], let labels = top["labels"] else {
            throw ImageIOError(path: path, "expected an object with \"labels\": [[\"file\", label], ...] or null")
        }
        if labels is NSNull { return nil }
        guard let list = labels as? [Any] else {
            throw ImageIOError(path: path, "\"labels\" must be a list of [\"file\", label] pairs or null")
        }
        var out = [String: Int]()
        for (i, item) in list.enumerated() {
            guard let pair = item as? [Any], pair.count == 2, let name = pair[0] as? String,
                  let number = pair[1] as? NSNumber,
                  let label = Int(exactly: number.doubleValue), label >= 0 else {
                throw ImageIOError(path: path, "labels[\(i)]: expected [\"file\", non-negative integer label]")
            }
            out[name.replacingOccurrences(of: "\\", with: "/")] = label
        }
        return out
    }
}
