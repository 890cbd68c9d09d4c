import TensorRuntime

/// A decoded image: Float samples in [0, 1], planar (CHW) order.
///
/// `pixels[c * height * width + y * width + x]` is channel `c` at row `y`, column `x`, so an image is
/// already one item of an NCHW batch. Channels are 1 (gray), 2 (gray, alpha), 3 (RGB) or 4 (RGBA).
public struct Image: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [Float]

    /// An image with the given samples (CHW, `channels * height * width` of them).
    public init(width: Int, height: Int, channels: Int, pixels: [Float]) {
        precondition(width >= 0 && height >= 0 && (1...4).contains(channels), "image \(width)x\(height)x\(channels)")
        precondition(pixels.count == width * height * channels,
                     "\(pixels.count) samples for a \(width)x\(height)x\(channels) image")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// An image filled with one value.
    public init(width: Int, height: Int, channels: Int, repeating value: Float) {
        self.init(width: width, height: height, channels: channels,
                  pixels: [Float](repeating: value, count: width * height * channels))
    }

    /// The image held in a `[C, H, W]` tensor, or item `index` of an `[N, C, H, W]` batch, taken as is
    /// (no change of range).
    public init(_ tensor: Tensor, index: Int = 0) throws {
        let s = tensor.shape
        guard s.count == 3 || s.count == 4, (1...4).contains(s[s.count - 3]) else {
            throw TensorError("an image tensor must be [C, H, W] or [N, C, H, W] with 1 to 4 channels, not \(describe(s))")
        }
        let (c, h, w) = (s[s.count - 3], s[s.count - 2], s[s.count - 1])
        let n = s.count == 4 ? s[0] : 1
        guard index >= 0 && index < n else {
            throw TensorError("image \(index) of a batch of \(n)")
        }
        // Copy this image's samples only: copying the whole batch for each image made writing N
        // images of a batch cost N^2 (`ganflow sample --count 10000` took 268 s).
        let all = tensor.isContiguous ? tensor : tensor.copy()
        let size = c * h * w
        self.init(width: w, height: h, channels: c, pixels: Array(UnsafeBufferPointer(start: all.data + index * size, count: size)))
    }

    /// Number of samples in one channel.
    public var planeSize: Int { width * height }

    /// The sample of channel `c` at row `y`, column `x`.
    public subscript(c: Int, y: Int, x: Int) -> Float {
        get { pixels[(c * height + y) * width + x] }
        set { pixels[(c * height + y) * width + x] = newValue }
    }

    /// This image as a `[C, H, W]` tensor of its samples.
    public func tensor() -> Tensor {
        // The initialiser only fails on a count mismatch, which `init` rules out.
        try! Tensor(shape: [channels, height, width], scalars: pixels)
    }

    /// Stacks images of one size and channel count into an `[N, C, H, W]` tensor.
    ///
    /// - Throws: `TensorError` naming the first image whose size or channel count differs.
    public static func batch(_ images: [Image]) throws -> Tensor {
        guard let first = images.first else { throw TensorError("a batch needs at least one image") }
        let size = first.pixels.count
        let out = Tensor(uninitialized: [images.count, first.channels, first.height, first.width])
        for (i, image) in images.enumerated() {
            guard image.width == first.width, image.height == first.height, image.channels == first.channels else {
                throw TensorError("image \(i) is \(image.width)x\(image.height)x\(image.channels), image 0 is \(first.width)x\(first.height)x\(first.channels)")
            }
            image.pixels.withUnsafeBufferPointer { (out.data + i * size).update(from: $0.baseAddress!, count: size) }
        }
        return out
    }
}
