import TensorRuntime

/// The class labels that the conditional layers of a forward pass (`LabelConcat`,
/// `ConditionalBatchNorm`, `ClassHead`) read.
///
/// A conditional network stays a `Layer` of one input, so `Sequential` and the PyTorch
/// `state_dict` names are those of its unconditional twin; the batch's labels are set around the
/// forward pass, per thread, as `BatchNorm.synchronized(over:)` sets the communicator. The
/// backward pass needs no labels: the one-hot rows are constants of the recorded ops.
public enum ClassLabels {
    private static let current = ThreadLocal<Tensor?> { nil }

    /// Runs `body` with `labels` ([N] class indices as floats, a dataset's `labels`) as the labels
    /// of every conditional layer it runs on this thread.
    public static func with<T>(_ labels: Tensor?, _ body: () throws -> T) rethrows -> T {
        try current.with(labels, body)
    }

    /// The running forward pass's labels as one-hot rows [batch, classes], or an error naming `layer`.
    static func oneHot(classes: Int, batch: Int, layer: String) throws -> Tensor {
        guard let labels = current.value else {
            throw TensorError("\(layer) is conditioned on classes but was given no class labels")
        }
        guard labels.shape == [batch] else {
            throw TensorError("\(layer): expected \(batch) class labels for a batch of \(batch), found labels of shape \(describe(labels.shape))")
        }
        return try oneHot(labels, classes: classes)
    }

    /// `labels` [N] (integral floats) as one-hot rows [N, classes]; a label outside 0..<classes
    /// or not an integer is an error.
    public static func oneHot(_ labels: Tensor, classes: Int) throws -> Tensor {
        let values = labels.scalars
        let out = Tensor(zeros: [values.count, classes])
        let p = out.data
        for (i, v) in values.enumerated() {
            guard v.rounded() == v, v >= 0, Int(v) < classes else {
                throw TensorError("class label \(v) is not one of 0...\(classes - 1) (\(classes) classes)")
            }
            p[i * classes + Int(v)] = 1
        }
        return out
    }
}

/// How a model is conditioned on a class label.
public struct ClassConditioning: Sendable, Equatable {
    public enum Method: String, Sendable, CaseIterable {
        /// A learned class embedding joined to G's latent; D's input joined to the one-hot class
        /// (as extra channels of every pixel).
        case concat
        /// Conditional batch norm in G: a per-class gain and bias (SNGAN, BigGAN).
        case cbn
        /// D's logit plus the inner product of a class embedding with its pooled features
        /// (Miyato and Koyama 2018).
        case projection
        /// An auxiliary classifier beside D's logit (ACGAN): D's output is [N, 1 + classes].
        case ac
        /// Both: the projection logit beside an auxiliary classifier's class logits, [N, 1 + classes].
        case projectionAC = "projection+ac"

        /// Whether D's output carries class logits beside its logit.
        public var hasAuxiliaryClassifier: Bool { self == .ac || self == .projectionAC }
    }

    public var method: Method
    public var classes: Int

    public init(_ method: Method, classes: Int) {
        self.method = method
        self.classes = classes
    }

    public static let generatorMethods: [Method] = [.concat, .cbn]
    public static let discriminatorMethods: [Method] = [.concat, .projection, .ac, .projectionAC]
}
