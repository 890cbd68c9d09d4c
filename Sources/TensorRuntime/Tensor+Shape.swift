/// Views that change how the same values are indexed.
extension Tensor {
    /// The same values under a new shape with the same element count. One dimension may be -1.
    /// Shares storage when this tensor is contiguous.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var target = newShape
        if let i = target.firstIndex(of: -1) {
            let known = target.enumerated().filter { $0.offset != i }.reduce(1) { $0 * $1.element }
            guard known > 0, count % known == 0 else {
                throw TensorError.shapeMismatch("reshape", shape, newShape)
            }
            target[i] = count / known
        }
        guard Tensor.elementCount(target) == count else {
            throw TensorError.shapeMismatch("reshape", shape, newShape, "\(count) values")
        }
        let src = contiguousData()
        let out = Tensor(storage: src.storage, shape: target, offset: src.offset)
        let inShape = shape
        return Tensor.record(out, "reshape", [self]) { g, _ in [try g.reshaped(inShape)] }
    }
}
