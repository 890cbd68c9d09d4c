import TensorRuntime

/// The last layer of a class-conditional discriminator: `psi`, the unconditional head (a
/// convolution or linear layer to one logit per image), and a class term on the features it
/// reads, summed over space:
///
/// - `projection` (Miyato and Koyama 2018): `psi(h) + <embed[y], sum_hw h>`, one logit per image [N];
/// - `auxiliary` (ACGAN): `psi(h)` beside class logits `W sum_hw h + b`, as [N, 1 + classes]
///   (the model stage splits them into a logit and class logits);
/// - `projectionAuxiliary`: both, the projection logit beside the class logits, [N, 1 + classes].
///
/// Names: `psi.weight` (and `psi.bias`, or spectral norm's `psi.weight_orig`, ...), then
/// `embed.weight` [classes, C] (projection) and/or `classifier.weight` [classes, C] and
/// `classifier.bias` (auxiliary), as a PyTorch module with those children.
public final class ClassHead: Layer {
    public enum Kind: Sendable { case projection, auxiliary, projectionAuxiliary }

    public let kind: Kind
    public let psi: any Layer
    /// The class embedding [classes, C] of the projection, or nil.
    public let embedding: Tensor?
    /// The auxiliary classifier's weight [classes, C] and bias [classes], or nil.
    public let classifier: (weight: Tensor, bias: Tensor?)?
    public let classes: Int

    public init(_ kind: Kind, psi: any Layer, features: Int, classes: Int, rng: inout PhiloxRandom) throws {
        self.kind = kind
        self.psi = psi
        self.classes = classes
        embedding = kind == .auxiliary ? nil : parameter(Tensor(randomNormal: [classes, features], std: 0.02, using: &rng))
        if kind == .projection {
            classifier = nil
        } else {
            let l = try Linear(features, classes, rng: &rng)
            classifier = (l.weight, l.bias)
        }
    }

    public func forward(_ x: Tensor, mode: ForwardMode) throws -> Tensor {
        _ = try outputShape(for: x.shape)
        let n = x.shape[0]
        var logit = try psi.forward(x, mode: mode).reshaped([n])
        let pooled = x.rank == 4 ? try x.sum(axes: [2, 3]) : x
        if let embedding {
            let oneHot = try ClassLabels.oneHot(classes: classes, batch: n, layer: "ClassHead(projection, \(classes) classes)")
            logit = try logit + (try matmul(oneHot, embedding) * pooled).sum(axes: [1])
        }
        guard let classifier else { return logit }
        return try Tensor.concat([try logit.reshaped([n, 1]), try linear(pooled, weight: classifier.weight, bias: classifier.bias)], axis: 1)
    }

    public var namedParameters: [(String, Tensor)] {
        var own: [(String, Tensor)] = embedding.map { [("embed.weight", $0)] } ?? []
        if let classifier {
            own += [("classifier.weight", classifier.weight)] + (classifier.bias.map { [("classifier.bias", $0)] } ?? [])
        }
        return psi.namedParameters.map { ("psi." + $0.0, $0.1) } + own
    }
    public var namedBuffers: [(String, Tensor)] { psi.namedBuffers.map { ("psi." + $0.0, $0.1) } }

    public func outputShape(for input: [Int]) throws -> [Int] {
        let c = (embedding ?? classifier!.weight).shape[1]
        guard (input.count == 2 || input.count == 4), input[1] == c else {
            throw TensorError("ClassHead: input \(describe(input)) must be [N, \(c)] or [N, \(c), H, W]")
        }
        let out = try psi.outputShape(for: input)
        guard out.reduce(1, *) == input[0] else {
            throw TensorError("ClassHead: its head gives \(describe(out)) for \(describe(input)), expected one logit per image")
        }
        return classifier == nil ? [input[0]] : [input[0], 1 + classes]
    }
}
