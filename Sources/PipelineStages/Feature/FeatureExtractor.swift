import Foundation
import NeuralNet
import PipelineGraph
import TensorRuntime

/// A trained `classifier.cnn` loaded from its exported weights, used to map images to the
/// features (penultimate layer) and class logits the metrics compare.
///
/// The architecture is read from the weights' shapes (`0.weight` gives the width and channels,
/// `12.weight` the hidden size, `14.weight` the classes), so any classifier exported by
/// `ganflow export --stage C` loads without repeating its configuration.
public final class FeatureExtractor: ImageFeatureNetwork, @unchecked Sendable {
    public let classifier: ConvClassifier
    /// Channels and side of the images the classifier takes.
    public let channels: Int
    public let size: Int
    /// Features per image.
    public var dimension: Int { classifier.hidden }
    public var classes: Int { classifier.classes }

    /// Loads `path` (a safetensors `state_dict` of a `classifier.cnn`); images of side `size`.
    public init(weights path: String, size: Int) throws {
        let archive: SafeTensorsArchive
        do {
            archive = try SafeTensorsArchive(contentsOf: path)
        } catch {
            throw StageProblem(key: "weights", "\(error)")
        }
        func shape(_ name: String, rank: Int) throws -> [Int] {
            guard let entry = archive.entry(name), entry.shape.count == rank else {
                throw StageProblem(key: "weights", "\(path): not the weights of a classifier.cnn (no \(rank)-D tensor '\(name)'); export one with `ganflow export RUN --stage C`")
            }
            return entry.shape
        }
        let first = try shape("0.weight", rank: 4), hiddenLayer = try shape("12.weight", rank: 2), last = try shape("14.weight", rank: 2)
        var rng = PhiloxRandom(seed: 0)
        do {
            classifier = try ConvClassifier(channels: first[1], size: size, classes: last[0], width: first[0], hidden: hiddenLayer[0], rng: &rng)
        } catch let e as TensorError {
            throw StageProblem(key: "size", e.message)
        }
        do {
            try NetworkCore(net: classifier, ports: []).loadStateDict(archive)
        } catch let p as StageProblem {
            throw StageProblem(key: "weights", "\(path): \(p.message)")
        }
        channels = first[1]
        self.size = size
    }

    /// Features [N, dimension] and logits [N, classes] of `images` [N, C, H, W] in [-1, 1], with
    /// the classifier's running statistics and no gradients. Images are first brought to the
    /// classifier's input (`adapted`).
    public func callAsFunction(_ images: Tensor) throws -> (features: Tensor, logits: Tensor) {
        let x = try Self.adapted(images, channels: channels, size: size)
        return try withoutGradients { try classifier.featuresAndLogits(x, mode: .eval) }
    }

    public func featuresAndLogits(of images: Tensor) throws -> (features: Tensor, logits: Tensor) { try self(images) }
    public func adaptedInput(_ images: Tensor) throws -> Tensor { try Self.adapted(images, channels: channels, size: size) }

    /// `images` [N, C, H, W] as the classifier takes them: channels averaged to gray when it takes
    /// one channel (or gray repeated when it takes more), then the centred `size` x `size` square,
    /// cut out of larger images (which undoes a dataset's `fit: pad`) or padded with black (-1)
    /// around smaller ones.
    public static func adapted(_ images: Tensor, channels: Int, size: Int) throws -> Tensor {
        guard images.rank == 4 else { throw TensorError("expected images [N, C, H, W], found \(describe(images.shape))") }
        let (n, c, h, w) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
        if c == channels && h == size && w == size { return images }
        let src = images.scalars
        var out = [Float](repeating: -1, count: n * channels * size * size)
        let top = (h - size) / 2, left = (w - size) / 2
        for i in 0..<n {
            for y in 0..<size {
                let sy = y + top
                guard sy >= 0, sy < h else { continue }
                for x in 0..<size {
                    let sx = x + left
                    guard sx >= 0, sx < w else { continue }
                    var gray: Float = 0
                    for k in 0..<c { gray += src[((i * c + k) * h + sy) * w + sx] }
                    gray /= Float(c)
                    for k in 0..<channels {
                        out[((i * channels + k) * size + y) * size + x] = c == channels ? src[((i * c + k) * h + sy) * w + sx] : gray
                    }
                }
            }
        }
        return try Tensor(shape: [n, channels, size, size], scalars: out)
    }
}
