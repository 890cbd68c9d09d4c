import ImageIO
import PipelineGraph
import TensorRuntime

/// One image (JPEG, PNG, WebP, HEIC or AVIF, by its content), read when the pipeline is built and served unchanged on every evaluation.
///
///     "content": { "type": "image.load", "path": "../Fixtures/photos/content/chelsea.png", "size": 256 }
///
/// Output `image` is [1, 3, H, W] in [0, 1] (gray images are repeated over the three channels,
/// alpha is dropped; a photo is turned upright by its EXIF orientation). With `fit: aspect` the longer side becomes `size` and the other keeps the
/// image's proportions; with `fit: square` the image is resized to `size` x `size`. `path` is
/// resolved against the pipeline file's folder, then the working directory.
public final class ImageLoadStage: Stage, @unchecked Sendable {
    public static let typeName = "image.load"
    public static let summary = "A JPEG, PNG, WebP, HEIC or AVIF image as [1, 3, H, W] in [0, 1], resized to 'size'; output 'image'."
    public static let configKeys: [ConfigKey] = [
        ConfigKey("path", .path, "The JPEG, PNG, WebP, HEIC or AVIF file (relative to the pipeline's folder, then the working directory)."),
        ConfigKey("size", .int(min: 8, max: 8192), default: .number(256), "Length of the longer side ('aspect') or of both sides ('square')."),
        ConfigKey("fit", .string(choices: ["aspect", "square"]), default: .string("aspect"), "Keep the proportions (aspect) or stretch to a square."),
        ConfigKey("maxPixels", .int(min: 1), default: .number(Double(ImageFile.defaultPixelLimit)),
                  "Largest width x height the file's header may declare; larger files are refused as decompression bombs."),
    ]

    public let outputs: [String: PortType]
    /// The image, [1, 3, H, W].
    public let image: Tensor

    public init(config: StageConfig, inputs: [String: PortType], context: BuildContext) throws {
        let path = try DataPaths.resolve(config.string("path"), key: "path", context: context)
        let size = config.int("size")
        do {
            // A large JPEG may be shrunk while decoding, as long as both sides stay at least `size`.
            let decoded = try ImageFile.read(path: path, options: ImageDecodeOptions(
                channels: 3, pixelLimit: config.int("maxPixels"), atLeast: (size, size)))
            let (w, h) = config.string("fit") == "square"
                ? (size, size) : Self.aspectSize(width: decoded.width, height: decoded.height, longSide: size)
            image = try decoded.resized(width: w, height: h).tensor().reshaped([1, 3, h, w])
        } catch let e as ImageIOError {
            throw StageProblem(key: "path", e.message)
        } catch let e as TransformError {
            throw StageProblem(key: "size", "\(path): \(e.message)")
        }
        outputs = ["image": .tensor(image.shape)]
    }

    /// Width and height with the longer side `longSide` and the proportions of `width` x `height`.
    static func aspectSize(width: Int, height: Int, longSide: Int) -> (Int, Int) {
        let scale = Double(longSide) / Double(max(width, height))
        let w = width >= height ? longSide : max(1, Int((Double(width) * scale).rounded()))
        let h = height >= width ? longSide : max(1, Int((Double(height) * scale).rounded()))
        return (w, h)
    }

    public func evaluate(_ evaluation: Evaluation) throws -> [String: PortValue] {
        ["image": .tensor(image)]
    }
}
