import TensorRuntime

/// A fixed rearrangement of a tensor's elements: output element `i` is input element `source[i]`
/// (flat, row-major), or 0 where `source[i]` is negative.
///
/// Flips and translations of image batches are such maps. The backward of a gather is the
/// scatter-add of the same map, whose own backward is the gather again, so gradients of every
/// order flow (as a gradient penalty through augmented images needs).
struct ElementMap: Sendable {
    let source: [Int32]
    let inputShape: [Int]
    let outputShape: [Int]

    /// Gathers `x` through this map.
    func gather(_ x: Tensor) -> Tensor {
        let input = x.isContiguous ? x : x.copy()
        let out = Tensor(uninitialized: outputShape)
        let src = input.data, dst = out.data
        source.withUnsafeBufferPointer { s in
            for i in 0..<s.count {
                let j = Int(s[i])
                dst[i] = j >= 0 ? src[j] : 0
            }
        }
        return Tensor.record(out, "element_map", [x]) { g, _ in [self.scatter(g)] }
    }

    /// Adds each element of `g` into the input position it was gathered from (the adjoint).
    func scatter(_ g: Tensor) -> Tensor {
        let grad = g.isContiguous ? g : g.copy()
        let out = Tensor(zeros: inputShape)
        let src = grad.data, dst = out.data
        source.withUnsafeBufferPointer { s in
            for i in 0..<s.count {
                let j = Int(s[i])
                if j >= 0 { dst[j] += src[i] }
            }
        }
        return Tensor.record(out, "element_map_adjoint", [g]) { gg, _ in [self.gather(gg)] }
    }

    /// Moves image `n` of an `[N, C, H, W]` batch by `shifts[n]` (rows down, columns right), filling
    /// with zeros, after mirroring it left to right where `flips[n]`.
    static func flipAndShift(_ shape: [Int], flips: [Bool], shifts: [(dy: Int, dx: Int)]) -> ElementMap {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        var source = [Int32](repeating: -1, count: n * c * h * w)
        for b in 0..<n {
            let (dy, dx) = shifts[b]
            for ch in 0..<c {
                let plane = (b * c + ch) * h * w
                for y in 0..<h {
                    let sy = y - dy
                    guard sy >= 0 && sy < h else { continue }
                    for x in 0..<w {
                        var sx = x - dx
                        guard sx >= 0 && sx < w else { continue }
                        if flips[b] { sx = w - 1 - sx }
                        source[plane + y * w + x] = Int32(plane + sy * w + sx)
                    }
                }
            }
        }
        return ElementMap(source: source, inputShape: shape, outputShape: shape)
    }
}
