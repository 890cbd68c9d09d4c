#if canImport(Glibc)
import Glibc
#endif

/// Softmax over the last axis and the classification loss built on it.
extension Tensor {
    /// log(softmax(x)) over the last axis, computed as (x - max) - log(sum(e^(x - max))) so that no
    /// exponential overflows.
    ///
    /// The backward, g - softmax(x) * sum(g), is written with differentiable ops on the output
    /// (softmax = e^y), so second-order gradients follow.
    public func logSoftmax() throws -> Tensor {
        guard rank >= 1, let classes = shape.last, classes > 0 else {
            throw TensorError("logSoftmax: expected at least one axis with elements, got \(describe(shape))")
        }
        let src = contiguousData()
        let out = Tensor(uninitialized: shape)
        let rows = count / classes
        for r in 0..<rows {
            let x = src.data + r * classes, y = out.data + r * classes
            var m = -Float.infinity
            for j in 0..<classes where x[j] > m || x[j] != x[j] { m = x[j] }
            var total: Float = 0
            for j in 0..<classes { total += expf(x[j] - m) }
            // (x - m) first: subtracting m + log(total) at once would round log(total) to the
            // spacing of floats near m.
            let logTotal = logf(total)
            for j in 0..<classes { y[j] = (x[j] - m) - logTotal }
        }
        return Tensor.recordUsingOutput(out, "log_softmax", [self]) { g, y, _ in
            [try g - (try y.exp() * (try g.sum(axes: [-1], keepDims: true)))]
        }
    }

    /// softmax(x) over the last axis: e^(logSoftmax(x)).
    public func softmax() throws -> Tensor { try logSoftmax().exp() }

    /// Cross-entropy of `logits` [N, K] against class indices `labels` [N] (whole numbers in
    /// 0..<K, stored as floats as datasets serve them): -log softmax(logits)[label], as PyTorch's
    /// `cross_entropy`.
    ///
    /// Built from `logSoftmax` and a constant one-hot mask, so it has gradients of every order
    /// with respect to the logits (labels get none).
    public static func crossEntropy(_ logits: Tensor, labels: Tensor, reduction: Reduction = .mean) throws -> Tensor {
        guard logits.rank == 2, labels.rank == 1, labels.shape[0] == logits.shape[0] else {
            throw TensorError.shapeMismatch("crossEntropy", logits.shape, labels.shape, "expected logits [N, K] and labels [N]")
        }
        let classes = logits.shape[1]
        let oneHot = Tensor(zeros: logits.shape)
        for (i, label) in labels.scalars.enumerated() {
            guard label.rounded() == label, label >= 0, Int(label) < classes else {
                throw TensorError("crossEntropy: label \(label) of sample \(i) is not a class index in 0..<\(classes)")
            }
            oneHot.data[i * classes + Int(label)] = 1
        }
        let picked = try (try logits.logSoftmax() * oneHot).sum(axes: [1])
        return (-picked).reduced(reduction)
    }
}
