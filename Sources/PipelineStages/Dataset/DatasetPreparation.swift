import Foundation
import ImageIO
import TensorRuntime

/// `ganflow dataset prepare`: decodes, orients and resizes a folder (or ZIP) of images once into a
/// prepared dataset (`.gfd`) that `dataset.prepared` memory-maps, so epochs never decode again.
///
/// Images are read and resized exactly as `dataset.images` serves them (same scan order, labels,
/// scaled JPEG decoding and area averaging), then rounded to bytes. Work is spread over every core
/// in chunks whose results are written in scan order, so the output does not depend on timing.
/// The packed bytes are held in memory until the file is written (its header needs the final
/// count): 12 kB per 64x64 RGB image, 1.2 GB for 100,000 of them.
public enum DatasetPreparation {
    public struct Options: Sendable {
        public var size: Int
        /// `resize`, `stretch`, `centerCrop` or `pad` (`randomCrop` is a per-epoch choice, not a preparation).
        public var fit: String
        public var channels: Int
        public var labelled: Bool
        public var extensions: [String]
        public var pixelLimit: Int
        /// Skip files that cannot be decoded (listing them) instead of stopping at the first.
        public var skipErrors: Bool

        public init(size: Int, fit: String = "resize", channels: Int = 3, labelled: Bool = true,
                    extensions: [String] = ImageFile.defaultExtensions, pixelLimit: Int = ImageFile.defaultPixelLimit, skipErrors: Bool = false) {
            self.size = size
            self.fit = fit
            self.channels = channels
            self.labelled = labelled
            self.extensions = extensions
            self.pixelLimit = pixelLimit
            self.skipErrors = skipErrors
        }

        /// The fits a preparation accepts.
        public static let fits = ["resize", "stretch", "centerCrop", "pad"]
    }

    /// What a preparation did.
    public struct Summary: Sendable {
        public var written: Int
        public var shape: [Int]
        public var classes: [String]
        /// Files that could not be decoded, with the reason (only with `skipErrors`).
        public var unreadable: [(path: String, reason: String)]
        /// Files that are not images by their extension.
        public var ignored: [String]
        /// What the scan left out besides those (`ImageFolder.notes`).
        public var notes: [String]
    }

    /// Prepares `source` into `out`; `progress(done, total)` is called on the caller's thread as
    /// chunks finish.
    public static func prepare(source: String, out: String, options: Options,
                               progress: (Int, Int) -> Void = { _, _ in }) throws -> Summary {
        guard let fit = ImagePreprocessing.Fit(rawValue: options.fit), Options.fits.contains(options.fit) else {
            throw ImageIOError(path: source, "fit '\(options.fit)': expected one of \(Options.fits.joined(separator: ", "))")
        }
        guard (1...4).contains(options.channels), options.size >= 1 else {
            throw ImageIOError(path: source, "channels must be 1 to 4 and size positive")
        }
        let folder = try ImageFolder(root: source, labelled: options.labelled, extensions: options.extensions)
        let preprocessing = ImagePreprocessing(channels: options.channels, size: options.size, fit: fit)
        let itemSize = options.channels * options.size * options.size
        let decode = ImageDecodeOptions(channels: options.channels, pixelLimit: options.pixelLimit, atLeast: preprocessing.decodeSize)
        var pixels = [UInt8]()
        var labels = [Int]()
        var sources = [String]()
        var unreadable = [(path: String, reason: String)]()
        let chunk = 64
        let prefix = folder.root + "/"
        var start = 0
        progress(0, folder.count)
        while start < folder.count {
            let end = min(start + chunk, folder.count)
            let results = Locked<[Int: Result<[UInt8], ImageIOError>]>([:])
            let first = start
            try parallelFor(end - start) { k in
                let i = first + k
                let r: Result<[UInt8], ImageIOError>
                do {
                    var rng = PhiloxRandom(seed: 0)
                    let image = try preprocessing.apply(try folder.image(at: i, options: decode), rng: &rng)
                    r = .success(image.bytesCHW())
                } catch let e as ImageIOError {
                    r = .failure(e)
                } catch let e as TransformError {
                    r = .failure(ImageIOError(path: folder.samples[i].path, e.message))
                }
                results.withLock { $0[i] = r }
            }
            let done = results.withLock { $0 }
            for i in start..<end {
                switch done[i]! {
                case .success(let bytes):
                    precondition(bytes.count == itemSize)
                    pixels += bytes
                    labels.append(folder.samples[i].label)
                    let path = folder.samples[i].path
                    sources.append(path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path)
                case .failure(let e):
                    guard options.skipErrors else { throw e }
                    unreadable.append((e.path, e.reason))
                }
            }
            start = end
            progress(start, folder.count)
        }
        guard !sources.isEmpty else { throw ImageIOError.noReadableImages(in: source, failures: unreadable) }
        let shape = [options.channels, options.size, options.size]
        try PreparedDataset.write(to: out, shape: shape, pixels: pixels, labels: folder.hasLabels ? labels : nil,
                                  classes: folder.classes, sources: sources)
        return Summary(written: sources.count, shape: shape, classes: folder.classes, unreadable: unreadable, ignored: folder.skipped,
                       notes: folder.notes)
    }
}

extension Image {
    /// Samples in [0, 1] as bytes (rounded, clamped), CHW.
    func bytesCHW() -> [UInt8] {
        pixels.map { PixelRange.unit.byte($0) }
    }
}
