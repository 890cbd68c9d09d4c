import Foundation
import ImageIO
import PipelineGraph
import TensorRuntime

/// Images from a folder (or a ZIP archive) of JPEG, PNG and WebP files, as people keep them.
///
///     "data": { "type": "dataset.images", "path": "~/Pictures/cats", "size": 64, "labels": false }
///
/// Files are found at any depth in a sorted, stable order and decoded batch by batch, in parallel
/// across files, ahead of the training loop; the decoder is chosen by each file's content. Files
/// whose extension is not in `extensions` (`.DS_Store`, `Thumbs.db`, notes) are skipped and counted.
/// Labels come from a StyleGAN2-ADA `dataset.json` at the root, else from first-level subfolders
/// (torchvision's ImageFolder). JPEGs larger than needed are shrunk while decoding (libjpeg-turbo's
/// 1/2, 1/4, 1/8 scaling), then area-averaged to `size`. Without `size` every image must have the
/// first one's size (every header is checked when the stage is built). A file that cannot be decoded
/// stops the run with its name and the reason, or with `onError: "skip"` is replaced by the next
/// readable image of the epoch; the skipped files are listed when the run ends.
public final class ImageFolderDatasetStage: DatasetBacked, @unchecked Sendable {
    public static let typeName = "dataset.images"
    public static let summary = "Images from a folder or ZIP of JPEG/PNG/WebP/HEIC/AVIF files (labels from subfolders or dataset.json); outputs 'images' in [-1, 1] and 'labels'."
    public static let lane = StageLane.data
    public static let configKeys: [ConfigKey] = [
        ConfigKey("path", .path, "The folder or ZIP archive; images at any depth, each first-level subfolder a class."),
        ConfigKey("labels", .bool, default: .bool(true), "Class labels from dataset.json or the subfolder names (false: every image below the folder, no 'labels' output)."),
        ConfigKey("extensions", .string(), default: .string(ImageFile.defaultExtensions.joined(separator: ",")),
                  "Comma-separated file extensions taken for images (case-insensitive); other files are skipped and counted."),
        ConfigKey("maxPixels", .int(min: 1), default: .number(Double(ImageFile.defaultPixelLimit)),
                  "Largest width x height a file's header may declare (Pillow's MAX_IMAGE_PIXELS); larger files are refused as decompression bombs."),
        ConfigKey("onError", .string(choices: ["stop", "skip"]), default: .string("stop"), "On an unreadable image: stop the run, or skip the file and list it at the end."),
    ] + DatasetCore.keys

    public let core: DatasetCore
    let folder: FolderSource

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let root = try DataPaths.resolve(config.string("path"), key: "path", context: context)
        let extensions = config.string("extensions").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !extensions.isEmpty else { throw StageProblem(key: "extensions", "name at least one extension, as \"jpg,png\"") }
        do {
            let scanned = try ImageFolder(root: root, labelled: config.bool("labels"), extensions: extensions)
            folder = try FolderSource(folder: scanned, config: config)
        } catch let e as ImageIOError {
            throw StageProblem(key: "path", e.message)
        }
        core = try DatasetCore(source: folder, config: config, inputs: inputs, context: context)
    }

    /// Files skipped so far (with `onError: "skip"`), with the reason.
    public var skippedFiles: [String: String] { folder.bad.withLock { $0 } }
}

/// The items of an `ImageFolder`, decoded on demand.
final class FolderSource: ItemSource, @unchecked Sendable {
    let folder: ImageFolder
    let labelled: Bool
    let skip: Bool
    let preprocessing: ImagePreprocessing
    let itemShape: [Int]
    let pixelLimit: Int
    /// Unreadable files found so far (index -> message); with `skip`, never tried again.
    let bad = Locked<[String: String]>([:])
    private let badIndices = Locked<Set<Int>>([])

    init(folder: ImageFolder, config: StageConfig) throws {
        self.folder = folder
        labelled = folder.hasLabels
        skip = config.string("onError") == "skip"
        pixelLimit = config.int("maxPixels")
        var first: (index: Int, info: ImageHeader)?
        let paths = folder.samples.map(\.path)
        // Without a size to serve, every image must match the first: check the headers now.
        let checkAll = config.isNull("size")
        let infos = Locked<[Int: Result<ImageHeader, ImageIOError>]>([:])
        try parallelFor(checkAll ? paths.count : 0, minimumPerTask: 16) { i in
            let r = FolderSource.header(folder, i)
            infos.withLock { $0[i] = r }
        }
        var found = infos.withLock { $0 }
        var i = 0
        while first == nil && i < paths.count {
            let r = found[i] ?? FolderSource.header(folder, i)
            found[i] = r
            switch r {
            case .success(let info): first = (i, info)
            case .failure(let e):
                guard skip else { throw e }
                bad.withLock { $0[paths[i]] = e.reason }
                badIndices.withLock { _ = $0.insert(i) }
            }
            i += 1
        }
        guard let first else { throw ImageIOError.noReadableImages(in: folder.root, failures: bad.withLock { $0 }.map { ($0.key, $0.value) }) }
        preprocessing = try ImagePreprocessing(config: config, fileChannels: first.info.channels)
        itemShape = try preprocessing.itemShape(height: first.info.height, width: first.info.width)
        if checkAll {
            for j in 0..<paths.count {
                switch found[j]! {
                case .success(let info):
                    if info.width != first.info.width || info.height != first.info.height {
                        throw ImageIOError(path: paths[j],
                            "image is \(info.width)x\(info.height), expected \(first.info.width)x\(first.info.height) like \(paths[first.index]) (set 'size' to serve one size)")
                    }
                case .failure(let e):
                    guard skip else { throw e }
                    bad.withLock { $0[paths[j]] = e.reason }
                    badIndices.withLock { _ = $0.insert(j) }
                }
            }
        }
    }

    static func header(_ folder: ImageFolder, _ index: Int) -> Result<ImageHeader, ImageIOError> {
        do {
            return .success(try folder.header(at: index))
        } catch let e as ImageIOError {
            return .failure(e)
        } catch {
            return .failure(ImageIOError(path: folder.samples[index].path, "\(error)"))
        }
    }

    var count: Int { folder.count }
    var hasLabels: Bool { labelled }

    /// Decodes one item into `destination`, or throws the file's error.
    private func decode(_ index: Int, into destination: UnsafeMutablePointer<Float>, rng: PhiloxRandom) throws {
        let path = folder.samples[index].path
        var rng = rng
        let image: Image
        do {
            let options = ImageDecodeOptions(channels: preprocessing.channels, pixelLimit: pixelLimit, atLeast: preprocessing.decodeSize)
            image = try preprocessing.apply(try folder.image(at: index, options: options), rng: &rng)
        } catch let e as TransformError {
            throw ImageIOError(path: path, e.message)
        }
        guard [image.channels, image.height, image.width] == itemShape else {
            throw ImageIOError(path: path,
                "image is \(image.width)x\(image.height), expected \(itemShape[2])x\(itemShape[1]) (set 'size' to serve one size)")
        }
        image.write(symmetricInto: destination)
    }

    func load(order: [Int], range: Range<Int>, random: (Int) -> PhiloxRandom) throws -> DataBatch {
        let n = range.count
        let itemSize = itemShape.reduce(1, *)
        let out = Tensor(uninitialized: [n] + itemShape)
        let dst = SendablePointer(out.data)
        let generators = (0..<n).map(random)
        let indices = Array(order[range])
        let failed = Locked<[Int: ImageIOError]>([:])
        let known = badIndices.withLock { $0 }
        try parallelFor(n) { slot in
            if known.contains(indices[slot]) {
                failed.withLock { $0[slot] = ImageIOError(path: "", "") }
                return
            }
            do {
                try decode(indices[slot], into: dst.pointer + slot * itemSize, rng: generators[slot])
            } catch let e as ImageIOError {
                guard skip else { throw e }
                failed.withLock { $0[slot] = e }
            }
        }
        var chosen = indices
        let failures = failed.withLock { $0 }
        if !failures.isEmpty {
            // Replace each unreadable file by the next readable one of the epoch after this batch
            // (wrapping around): a choice that depends only on the order and the files, so the batch
            // is still a pure function of its position.
            for (slot, e) in failures where !e.path.isEmpty {
                bad.withLock { $0[e.path] = e.reason }
                badIndices.withLock { _ = $0.insert(indices[slot]) }
            }
            var cursor = range.upperBound
            for slot in failures.keys.sorted() {
                var replaced = false
                for _ in 0..<order.count {
                    let candidate = order[cursor % order.count]
                    cursor += 1
                    if badIndices.withLock({ $0.contains(candidate) }) { continue }
                    do {
                        try decode(candidate, into: dst.pointer + slot * itemSize, rng: generators[slot])
                        chosen[slot] = candidate
                        replaced = true
                        break
                    } catch let e as ImageIOError {
                        bad.withLock { $0[e.path] = e.reason }
                        badIndices.withLock { _ = $0.insert(candidate) }
                    }
                }
                if !replaced { throw ImageIOError(path: folder.root, "no readable images left to replace skipped files") }
            }
        }
        return DataBatch(images: out, labels: labelled ? chosen.map { folder.samples[$0].label } : nil)
    }

    func finishReport() -> String? {
        var lines = [String]()
        let b = bad.withLock { $0 }
        if !b.isEmpty {
            lines.append("skipped \(b.count) unreadable image\(b.count == 1 ? "" : "s") of \(count):")
            lines += b.keys.sorted().map { "  \($0): \(b[$0]!)" }
        }
        if !folder.skipped.isEmpty {
            let n = folder.skipped.count
            lines.append("ignored \(n) file\(n == 1 ? " that is not an image" : "s that are not images") by extension: " + folder.skipped.joined(separator: ", "))
        }
        lines += folder.notes
        return lines.isEmpty ? nil : lines.joined(separator: "\n")
    }
}
