import TensorRuntime

/// Joins each input to its class label: a learned class embedding (G's `concat`) or the one-hot
/// class (D's `concat`), as extra features of [N, F] or extra channels of [N, C, H, W], repeated
/// over every pixel.
///
/// The learned embedding is `embed.weight` [classes, width], as PyTorch's `nn.Embedding`
/// (initialised N(0, 1) like it).
public final class LabelConcat: Layer {
    public let classes: Int
    /// [classes, width], or nil for the one-hot class.
    public let embedding: Tensor?

    public init(classes: Int, embedding width: Int?, rng: inout PhiloxRandom) {
        self.classes = classes
        embedding = width.map { parameter(Tensor(randomNormal: [classes, $0], using: &rng)) }
    }

    /// Features added to each input.
    public var width: Int { embedding?.shape[1] ?? classes }

    public func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor {
        _ = try outputShape(for: x.shape)
        let n = x.shape[0]
        let oneHot = try ClassLabels.oneHot(classes: classes, batch: n, layer: "LabelConcat(\(classes) classes)")
        var e = try embedding.map { try matmul(oneHot, $0) } ?? oneHot
        if x.rank == 4 {
            e = try e.reshaped([n, width, 1, 1]).expanded(to: [n, width, x.shape[2], x.shape[3]])
        }
        return try Tensor.concat([x, e], axis: 1)
    }

    public var namedParameters: [(String, Tensor)] { embedding.map { [("embed.weight", $0)] } ?? [] }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 2 || input.count == 4 else {
            throw TensorError("LabelConcat: expected [N, F] or [N, C, H, W], found \(describe(input))")
        }
        var out = input
        out[1] += width
        return out
    }
}
