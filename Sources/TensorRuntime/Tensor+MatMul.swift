/// Matrix products: `matmul`, `linear` and the Gram matrix.

/// The matrix product op(a) op(b), where op transposes when `transposeA` / `transposeB` is set.
///
/// Operands are 2-D ([m, k] times [k, n]) or 3-D with equal batch ([B, m, k] times [B, k, n]);
/// a transposed operand is given as stored, e.g. a [k, m] tensor with `transposeA`. Gradients
/// are matmuls again, so every order is available.
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) throws -> Tensor {
    guard (a.rank == 2 && b.rank == 2) || (a.rank == 3 && b.rank == 3) else {
        throw TensorError.shapeMismatch("matmul", a.shape, b.shape, "expected two 2-D or two 3-D tensors")
    }
    let batch: Int? = a.rank == 3 ? a.shape[0] : nil
    if a.rank == 3, a.shape[0] != b.shape[0] {
        throw TensorError.shapeMismatch("matmul", a.shape, b.shape, "batch sizes \(a.shape[0]) and \(b.shape[0])")
    }
    let r = a.rank
    let (m, ka) = transposeA ? (a.shape[r - 1], a.shape[r - 2]) : (a.shape[r - 2], a.shape[r - 1])
    let (kb, n) = transposeB ? (b.shape[r - 1], b.shape[r - 2]) : (b.shape[r - 2], b.shape[r - 1])
    guard ka == kb else {
        throw TensorError.shapeMismatch("matmul", a.shape, b.shape, "inner dimensions \(ka) and \(kb)")
    }
    let geometry = MatMulGeometry(batch: batch, m: m, k: ka, n: n, transposeA: transposeA, transposeB: transposeB, bias: false)
    let out = try MatMulPrimitives.run(a, b, nil, geometry)
    return Tensor.record(out, "matmul", [a, b]) { g, need in
        // C = op(A) op(B): dop(A) = G op(B)^T and dop(B) = op(A)^T G, transposed back when the
        // operand was used transposed.
        [
            need[0] ? (transposeA
                ? try matmul(b, g, transposeA: transposeB, transposeB: true)
                : try matmul(g, b, transposeA: false, transposeB: !transposeB)) : nil,
            need[1] ? (transposeB
                ? try matmul(g, a, transposeA: true, transposeB: transposeA)
                : try matmul(a, g, transposeA: !transposeA, transposeB: false)) : nil,
        ]
    }
}

/// A fully connected layer's map: x W^T + b, for `x` [N, in], `weight` [out, in] (PyTorch's
/// layout) and an optional `bias` [out].
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
    guard x.rank == 2, weight.rank == 2 else {
        throw TensorError.shapeMismatch("linear", x.shape, weight.shape, "expected input [N, in] and weight [out, in]")
    }
    guard x.shape[1] == weight.shape[1] else {
        throw TensorError.shapeMismatch("linear", x.shape, weight.shape, "input has \(x.shape[1]) features, weight expects \(weight.shape[1])")
    }
    if let bias, bias.shape != [weight.shape[0]] {
        throw TensorError.shapeMismatch("linear", weight.shape, bias.shape, "bias must be [\(weight.shape[0])]")
    }
    let geometry = MatMulGeometry(
        batch: nil, m: x.shape[0], k: x.shape[1], n: weight.shape[0], transposeA: false, transposeB: true,
        bias: bias != nil)
    let out = try MatMulPrimitives.run(x, weight, bias, geometry)
    return Tensor.record(out, "linear", bias.map { [x, weight, $0] } ?? [x, weight]) { g, need in
        [
            need[0] ? try matmul(g, weight) : nil,
            need[1] ? try matmul(g, x, transposeA: true) : nil,
        ] + (bias == nil ? [] : [need[2] ? try g.sum(axes: [0]) : nil])
    }
}

/// Gram matrices of feature maps: for `features` [N, C, H, W], F F^T / `normalizer` per sample,
/// with F the [C, H W] matrix of one sample; the result is [N, C, C] (style transfer losses).
public func gram(_ features: Tensor, normalizer: Float) throws -> Tensor {
    guard features.rank == 4 else {
        throw TensorError("gram: features \(describe(features.shape)) must be [N, C, H, W]")
    }
    let s = features.shape
    let f = try features.reshaped([s[0], s[1], s[2] * s[3]])
    return try matmul(f, f, transposeB: true) / normalizer
}
