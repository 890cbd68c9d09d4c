import Foundation
import PipelineGraph
import TensorRuntime

/// The Inception Score (Salimans et al., 2016) of class logits, as torch-fidelity computes it:
/// the samples are shuffled and cut into `splits` consecutive parts (part i holds rows
/// i N / splits ..< (i + 1) N / splits); each part scores exp(mean over its rows of
/// KL(p(y|x) || p(y))), with p(y) the part's mean prediction; reported are the mean and the
/// population standard deviation over the parts. In Double, with softmax and log-softmax taken
/// stably from the logits.
///
/// torch-fidelity shuffles with NumPy's generator (seed 2020); this shuffle is GANFlow's own
/// (Philox, `seed`), so with many samples the two agree to the sampling noise of the split, and
/// with `shuffle: false` exactly.
public enum InceptionScore {
    public static func score(logits: Tensor, splits: Int = 10, shuffle: Bool = true, seed: UInt64 = 0) throws -> (mean: Double, std: Double) {
        guard logits.rank == 2, logits.shape[1] >= 2 else {
            throw TensorError("Inception Score: expected logits [n, classes] with at least 2 classes, found \(describe(logits.shape))")
        }
        let n = logits.shape[0], c = logits.shape[1]
        guard splits >= 1, n >= splits else {
            throw TensorError("Inception Score: \(n) samples cannot be cut into \(splits) splits")
        }
        var order = Array(0..<n)
        if shuffle {
            var rng = PhiloxRandom(seed: seed, stream: stableHash("inception score"))
            order = KernelDistance.sample(n, n, &rng)
        }
        let x = logits.scalars
        // log p(y|x) per row, in Double.
        var logP = [Double](repeating: 0, count: n * c)
        for i in 0..<n {
            let row = order[i] * c
            var top = -Double.infinity
            for k in 0..<c { top = max(top, Double(x[row + k])) }
            var total: Double = 0
            for k in 0..<c { total += Foundation.exp(Double(x[row + k]) - top) }
            let logTotal = top + Foundation.log(total)
            for k in 0..<c { logP[i * c + k] = Double(x[row + k]) - logTotal }
        }
        var scores: [Double] = []
        for s in 0..<splits {
            let rows = (s * n / splits)..<((s + 1) * n / splits)
            var marginal = [Double](repeating: 0, count: c)
            for i in rows { for k in 0..<c { marginal[k] += Foundation.exp(logP[i * c + k]) } }
            let logMarginal = marginal.map { Foundation.log($0 / Double(rows.count)) }
            var kl: Double = 0
            for i in rows {
                for k in 0..<c {
                    let lp = logP[i * c + k]
                    kl += Foundation.exp(lp) * (lp - logMarginal[k])
                }
            }
            scores.append(Foundation.exp(kl / Double(rows.count)))
        }
        let mean = scores.reduce(0, +) / Double(splits)
        let variance = scores.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(splits)
        return (mean, variance.squareRoot())
    }
}
