import ImageIO
import PipelineGraph
import TensorRuntime

/// How a decoded image becomes one item of a served batch: channels, then size, then a mirror
/// image with probability 1/2 when asked.
///
/// Every dataset stage shares these keys, so `size`, `fit`, `channels` and `mirror` mean the same
/// thing whatever the files are.
struct ImagePreprocessing: Sendable {
    enum Fit: String, Sendable, CaseIterable {
        /// Scale the shorter side to `size` (area when shrinking, bilinear when enlarging), then
        /// cut the centred square.
        case resize
        /// Centre the image on a `size` x `size` black canvas (28 -> 32 for MNIST-like sets).
        case pad
        /// Cut the centred `size` x `size` square.
        case centerCrop
        /// Cut a `size` x `size` square at an offset drawn per image and epoch.
        case randomCrop
        /// Resize both sides to `size`, whatever the proportions (area when shrinking).
        case stretch
    }

    static let keys: [ConfigKey] = [
        ConfigKey("size", .int(min: 1, max: 4096), default: .null, "Side of the square images served (null: the files' own size)."),
        ConfigKey("fit", .string(choices: Fit.allCases.map(\.rawValue)), default: .string("resize"),
                  "How images reach 'size': resize (shorter side, then centre crop), pad, centerCrop, randomCrop or stretch."),
        ConfigKey("channels", .int(min: 1, max: 4), default: .null, "Channels served: 1 gray, 3 RGB (null: as the files)."),
        ConfigKey("mirror", .bool, default: .bool(false),
                  "Serve each image flipped left to right with probability 1/2, drawn per image and epoch (torchvision's RandomHorizontalFlip, StyleGAN2-ADA's --mirror): for photos, whose mirror images are as likely."),
    ]

    var channels: Int
    var size: Int?
    var fit: Fit
    /// Whether images are flipped left to right with probability 1/2.
    var mirror: Bool

    init(channels: Int, size: Int?, fit: Fit, mirror: Bool = false) {
        self.channels = channels
        self.size = size
        self.fit = fit
        self.mirror = mirror
    }

    init(config: StageConfig, fileChannels: Int) throws {
        channels = config.optionalInt("channels") ?? fileChannels
        size = config.optionalInt("size")
        fit = Fit(rawValue: config.string("fit"))!
        mirror = config.bool("mirror")
        if fit == .randomCrop && size == nil {
            throw StageProblem(key: "fit", "randomCrop needs a 'size' to crop to")
        }
    }

    /// The smallest decoded size `apply` needs, when a JPEG may be shrunk while decoding (fits that
    /// resize); nil when the image must be decoded whole (no `size`, crops, padding).
    var decodeSize: (width: Int, height: Int)? {
        guard let size, fit == .resize || fit == .stretch else { return nil }
        return (size, size)
    }

    /// The `[C, H, W]` served for files of `height` x `width`, or a problem at `size`.
    func itemShape(height: Int, width: Int) throws -> [Int] {
        guard let size else { return [channels, height, width] }
        switch fit {
        case .pad:
            guard size >= height, size >= width else {
                throw StageProblem(key: "size", "cannot pad \(width)x\(height) images to the smaller \(size)x\(size) (use fit \"resize\" or a crop)")
            }
        case .centerCrop, .randomCrop:
            guard size <= height, size <= width else {
                throw StageProblem(key: "size", "cannot crop \(size)x\(size) from \(width)x\(height) images (use fit \"resize\" or \"pad\")")
            }
        case .resize, .stretch: break
        }
        return [channels, size, size]
    }

    /// `image` (in [0, 1], any channels) as served; `rng` is read by random crops, then by the
    /// mirror's draw.
    func apply(_ image: Image, rng: inout PhiloxRandom) throws -> Image {
        var out = try fitted(image.converted(toChannels: channels), rng: &rng)
        if mirrors(&rng) { out = out.mirrored() }
        return out
    }

    /// Whether the item whose generator is `rng` (after any crop's draws) is served mirrored.
    func mirrors(_ rng: inout PhiloxRandom) -> Bool {
        mirror && rng.next() & 1 == 1
    }

    /// `image` brought to `size` by `fit`.
    private func fitted(_ image: Image, rng: inout PhiloxRandom) throws -> Image {
        var out = image
        guard let size else { return out }
        if out.width == size && out.height == size { return out }
        switch fit {
        case .resize:
            let scale = Double(size) / Double(min(out.width, out.height))
            let w = max(size, Int((Double(out.width) * scale).rounded())), h = max(size, Int((Double(out.height) * scale).rounded()))
            out = try out.resized(width: w, height: h)
            if w != size || h != size { out = try out.centerCropped(width: size, height: size) }
        case .stretch:
            out = try out.resized(width: size, height: size)
        case .pad:
            out = try out.padded(toWidth: size, height: size)
        case .centerCrop:
            out = try out.centerCropped(width: size, height: size)
        case .randomCrop:
            out = try out.randomCropped(width: size, height: size, using: &rng)
        }
        return out
    }
}

extension Image {
    /// Writes this image into `destination` (CHW) mapped into [-1, 1].
    func write(symmetricInto destination: UnsafeMutablePointer<Float>) {
        pixels.withUnsafeBufferPointer { src in
            for k in 0..<src.count { destination[k] = 2 * src[k] - 1 }
        }
    }
}
