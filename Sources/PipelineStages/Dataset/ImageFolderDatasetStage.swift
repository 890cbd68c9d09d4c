import Foundation
import ImageIO
import PipelineGraph
import TensorRuntime

/// Images from a folder of PNG files, class labels from its subfolders (as torchvision's ImageFolder).
///
///     "data": { "type": "dataset.images", "path": "Fixtures/fashion-mnist", "size": 32, "channels": 1 }
///
/// Files are scanned recursively in a sorted, stable order and decoded batch by batch, in parallel
/// across files, ahead of the training loop. Without `size` every image must have the first one's
/// size (every header is checked when the stage is built). A file libpng cannot decode stops the
/// run with its name and libpng's reason, or with `onError: "skip"` is replaced by the next
/// readable image of the epoch and counted; the count is reported when the run ends.
public final class ImageFolderDatasetStage: DatasetBacked, @unchecked Sendable {
    public static let typeName = "dataset.images"
    public static let summary = "Images from a folder of PNGs (labels from subfolders); outputs 'images' in [-1, 1] and 'labels'."
    public static let lane = StageLane.data
    public static let configKeys: [ConfigKey] = [
        ConfigKey("path", .path, "The folder; each first-level subfolder is a class (PNG files at any depth below it)."),
        ConfigKey("labels", .bool, default: .bool(true), "Class labels from subfolder names (false: every PNG below the folder, no 'labels' output)."),
        ConfigKey("onError", .string(choices: ["stop", "skip"]), default: .string("stop"), "On an unreadable PNG: stop the run, or skip the file and report the count at the end."),
    ] + DatasetCore.keys

    public let core: DatasetCore
    let folder: FolderSource

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let root = try DataPaths.resolve(config.string("path"), key: "path", context: context)
        do {
            let scanned = try ImageFolder(root: root, labelled: config.bool("labels"))
            folder = try FolderSource(folder: scanned, config: config, labelled: config.bool("labels"))
        } catch let e as ImageIOError {
            throw StageProblem(key: "path", e.message)
        }
        core = try DatasetCore(source: folder, config: config, inputs: inputs, context: context)
    }

    /// Files skipped so far (with `onError: "skip"`), with libpng's reason.
    public var skippedFiles: [String: String] { folder.bad.withLock { $0 } }

}

/// The items of an `ImageFolder`, decoded on demand.
final class FolderSource: ItemSource, @unchecked Sendable {
    let folder: ImageFolder
    let labelled: Bool
    let skip: Bool
    let preprocessing: ImagePreprocessing
    let itemShape: [Int]
    /// Unreadable files found so far (index -> message); with `skip`, never tried again.
    let bad = Locked<[String: String]>([:])
    private let badIndices = Locked<Set<Int>>([])

    init(folder: ImageFolder, config: StageConfig, labelled: Bool) throws {
        self.folder = folder
        self.labelled = labelled
        skip = config.string("onError") == "skip"
        var first: (index: Int, info: PNG.Info)?
        let paths = folder.samples.map(\.path)
        // Without a size to serve, every image must match the first: check the headers now.
        let checkAll = config.isNull("size")
        let infos = Locked<[Int: Result<PNG.Info, ImageIOError>]>([:])
        try parallelFor(checkAll ? paths.count : 0, minimumPerTask: 16) { i in
            let r = FolderSource.header(paths[i])
            infos.withLock { $0[i] = r }
        }
        var found = infos.withLock { $0 }
        var i = 0
        while first == nil && i < paths.count {
            let r = found[i] ?? FolderSource.header(paths[i])
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
        guard let first else { throw ImageIOError(path: folder.root, "no readable PNG images (every file failed to decode)") }
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

    static func header(_ path: String) -> Result<PNG.Info, ImageIOError> {
        do {
            return .success(try PNG.info(path))
        } catch let e as ImageIOError {
            return .failure(e)
        } catch {
            return .failure(ImageIOError(path: path, "\(error)"))
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
            image = try preprocessing.apply(try PNG.read(path, channels: preprocessing.channels), rng: &rng)
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
        let dst = SendablePointer(pointer: out.data)
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
                if !replaced { throw ImageIOError(path: folder.root, "no readable PNG images left to replace skipped files") }
            }
        }
        return DataBatch(images: out, labels: labelled ? chosen.map { folder.samples[$0].label } : nil)
    }

    func finishReport() -> String? {
        let b = bad.withLock { $0 }
        guard !b.isEmpty else { return nil }
        let first = b.keys.sorted()[0]
        return "skipped \(b.count) unreadable image\(b.count == 1 ? "" : "s") of \(count) (first: \(first): \(b[first]!))"
    }
}
