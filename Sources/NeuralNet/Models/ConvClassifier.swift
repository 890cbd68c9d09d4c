import TensorRuntime

/// A small convolutional image classifier whose penultimate layer serves as a feature space for
/// GAN metrics (the part Inception plays in FID, for small gray images).
///
/// Laid out as PyTorch's
///
///     nn.Sequential(Conv2d(C, w, 3, 1, 1), ReLU,
///                   Conv2d(w, 2w, 4, 2, 1, bias=False), BatchNorm2d(2w), ReLU,
///                   Conv2d(2w, 2w, 4, 2, 1, bias=False), BatchNorm2d(2w), ReLU,
///                   Conv2d(2w, 4w, 3, 2, 1, bias=False), BatchNorm2d(4w), ReLU,
///                   Flatten, Linear(4w * s * s, hidden), ReLU, Linear(hidden, classes))
///
/// so its `state_dict` names are `0.weight`, `2.weight`, `3.running_mean`, ..., `12.weight`,
/// `14.weight`. Three stride-2 layers take 28x28 (and 32x32) inputs to 4x4. The features are the
/// output of the ReLU after the hidden linear layer (index 13).
public final class ConvClassifier: Layer {
    public let net: Sequential
    /// Layers `0..<featureDepth` compute the features; the rest compute logits from them.
    public let featureDepth: Int
    public let hidden: Int
    public let classes: Int

    public init(channels: Int, size: Int, classes: Int, width: Int = 32, hidden: Int = 128, rng: inout PhiloxRandom) throws {
        guard size >= 8 else { throw TensorError("the classifier needs images of at least 8x8, found \(size)x\(size)") }
        guard classes >= 2, width >= 1, hidden >= 1 else {
            throw TensorError("the classifier needs at least 2 classes and positive widths (classes \(classes), width \(width), hidden \(hidden))")
        }
        var layers: [any Layer] = [try Conv2D(channels, width, kernel: 3, stride: 1, padding: 1, rng: &rng), Activation(.relu)]
        for (from, to, kernel) in [(width, 2 * width, 4), (2 * width, 2 * width, 4), (2 * width, 4 * width, 3)] {
            layers += [try Conv2D(from, to, kernel: kernel, stride: 2, padding: 1, bias: false, rng: &rng), BatchNorm(to), Activation(.relu)]
        }
        let convolved = try Sequential(layers).outputShape(for: [1, channels, size, size])
        let flat = convolved.dropFirst().reduce(1, *)
        layers += [Reshape([flat]), try Linear(flat, hidden, rng: &rng), Activation(.relu)]
        featureDepth = layers.count
        layers.append(try Linear(hidden, classes, rng: &rng))
        net = Sequential(layers)
        self.hidden = hidden
        self.classes = classes
    }

    /// Logits [N, classes].
    public func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor {
        try net.forward(x, mode: mode)
    }

    /// Penultimate-layer features [N, hidden] and logits [N, classes] in one pass.
    public func featuresAndLogits(_ x: Tensor, mode: ForwardMode) throws -> (features: Tensor, logits: Tensor) {
        var y = x
        for layer in net.layers[0..<featureDepth] { y = try layer.forward(y, mode: mode) }
        var logits = y
        for layer in net.layers[featureDepth...] { logits = try layer.forward(logits, mode: mode) }
        return (y, logits)
    }

    public var namedParameters: [(String, Tensor)] { net.namedParameters }
    public var namedBuffers: [(String, Tensor)] { net.namedBuffers }
    public var namedCounters: [(String, Int)] { net.namedCounters }
    public func setCounter(_ name: String, _ value: Int) { net.setCounter(name, value) }
    public func outputShape(for input: [Int]) throws -> [Int] { try net.outputShape(for: input) }
}
