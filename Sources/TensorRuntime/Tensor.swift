/// An n-dimensional array of Float32 values that can record the operations made on it.
///
/// A tensor is a view (shape, strides, offset) on a shared `Storage`. Views made by `reshape`,
/// `detach` and slicing along the first axis share storage with their source. Kernels work on
/// contiguous row-major data; `contiguous()` copies only when the view is not.
public final class Tensor: @unchecked Sendable {
    public let storage: Storage
    public let shape: [Int]
    public let strides: [Int]
    public let offset: Int

    /// Whether gradients flow to or through this tensor.
    public internal(set) var requiresGrad: Bool
    /// The operation that produced this tensor, when it was recorded.
    public internal(set) var gradFn: GradFn?
    /// Gradient accumulated by `backward()` on a leaf.
    public var grad: Tensor?
    /// Optional label, used in error messages and parameter paths.
    public var name: String?
    /// Copies of the values in kernel layouts, when the tensor keeps them (`keepLayoutCopies()`).
    private(set) var layoutCopies: LayoutCopies?

    public init(storage: Storage, shape: [Int], strides: [Int]? = nil, offset: Int = 0, requiresGrad: Bool = false) {
        self.storage = storage
        self.shape = shape
        self.strides = strides ?? Tensor.contiguousStrides(shape)
        self.offset = offset
        self.requiresGrad = requiresGrad
    }

    /// An uninitialised contiguous tensor; every element must be written before it is read.
    public convenience init(uninitialized shape: [Int]) {
        self.init(storage: Storage(count: Tensor.elementCount(shape)), shape: shape)
    }

    /// A tensor of zeros.
    public convenience init(zeros shape: [Int]) {
        self.init(storage: Storage(zeros: Tensor.elementCount(shape)), shape: shape)
    }

    /// A tensor with every element equal to `value`.
    public convenience init(repeating value: Float, shape: [Int]) {
        self.init(uninitialized: shape)
        storage.pointer.update(repeating: value, count: count)
    }

    /// A scalar (rank 0) tensor.
    public convenience init(_ value: Float) {
        self.init(repeating: value, shape: [])
    }

    /// A tensor holding `scalars` in row-major order.
    public convenience init(shape: [Int], scalars: [Float]) throws {
        let n = Tensor.elementCount(shape)
        guard n == scalars.count else {
            throw TensorError("shape \(describe(shape)) holds \(n) values, but \(scalars.count) were given")
        }
        self.init(uninitialized: shape)
        scalars.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: n) }
    }

    public var rank: Int { shape.count }
    public var count: Int { Tensor.elementCount(shape) }

    /// Whether elements lie in row-major order without gaps.
    public var isContiguous: Bool {
        var expected = 1
        for axis in stride(from: rank - 1, through: 0, by: -1) where shape[axis] != 1 {
            if strides[axis] != expected { return false }
            expected *= shape[axis]
        }
        return true
    }

    /// Pointer to the first element. Only meaningful as a flat buffer when `isContiguous`.
    public var data: UnsafeMutablePointer<Float> { storage.pointer + offset }

    /// The elements in row-major order.
    public var scalars: [Float] { withUnsafeScalars { Array($0) } }

    /// Calls `body` with the elements in row-major order: `scalars` without the copy into a new
    /// array where the tensor is contiguous (a multi-megabyte array lands in fresh pages, whose
    /// faults can cost more than the arithmetic that reads it).
    public func withUnsafeScalars<T>(_ body: (UnsafeBufferPointer<Float>) throws -> T) rethrows -> T {
        let c = contiguousData()
        return try withExtendedLifetime(c) { try body(UnsafeBufferPointer(start: c.data, count: c.count)) }
    }

    /// The single value of a one-element tensor.
    public func item() -> Float {
        precondition(count == 1, "item() on a tensor of shape \(describe(shape))")
        return contiguousData().data[0]
    }

    /// This tensor as contiguous data, copying only when needed. Not recorded for autograd.
    func contiguousData() -> Tensor {
        if isContiguous { return self }
        let out = Tensor(uninitialized: shape)
        if isChannelsLastDense, StorageOrderConversion.run(from: self, .channelsLast, to: out, .channelsFirst) {
            return out
        }
        copyStrided(from: self, into: out.data)
        return out
    }

    /// A tensor sharing this one's values but cut off from the autograd graph.
    public func detached() -> Tensor {
        Tensor(storage: storage, shape: shape, strides: strides, offset: offset)
    }

    /// Marks a leaf tensor as a parameter whose gradient is wanted.
    @discardableResult
    public func requiringGradients(_ flag: Bool = true) -> Tensor {
        precondition(gradFn == nil, "requiringGradients on a non-leaf tensor")
        requiresGrad = flag
        return self
    }

    /// A deep copy, detached from the graph.
    public func copy() -> Tensor {
        let out = Tensor(uninitialized: shape)
        copyStrided(from: self, into: out.data)
        return out
    }

    /// Overwrites this tensor's elements with `source`'s (same element count); not recorded.
    /// Drops the copies kept by `keepLayoutCopies()`.
    public func assign(_ source: Tensor) throws {
        guard source.count == count else { throw TensorError.shapeMismatch("assign", shape, source.shape) }
        precondition(isContiguous, "assign into a non-contiguous view")
        layoutCopies?.removeAll()
        copyStrided(from: source, into: data)
    }

    /// Keeps, from now on, the copies that kernels make of this tensor in their own layouts
    /// (oneDNN's channel-blocked ones), so that a kernel reading it again in the same layout
    /// skips the conversion: for weights that inference reads batch after batch, and for
    /// activations read by several kernels.
    ///
    /// A promise that the values do not change while the tensor is read: writing them through
    /// `data` or `storage` leaves the copies stale (`assign` drops them). Call it before the
    /// tensor is shared between threads.
    public func keepLayoutCopies() {
        if layoutCopies == nil { layoutCopies = LayoutCopies() }
    }

    /// Drops the copies kept by `keepLayoutCopies()` (which goes on keeping new ones): for a
    /// writer that changed the values through `data`, such as an optimizer's update.
    public func dropLayoutCopies() {
        layoutCopies?.removeAll()
    }

    static func elementCount(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape { n *= d }
        return n
    }

    static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var s = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[axis] = s
            s *= shape[axis]
        }
        return strides
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let values = scalars.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(\(describe(shape)): [\(values)\(count > 8 ? ", ..." : "")])"
    }
}

/// Copies a possibly strided tensor into a contiguous buffer in row-major order.
func copyStrided(from src: Tensor, into dst: UnsafeMutablePointer<Float>) {
    let n = src.count
    if n == 0 { return }
    if src.isContiguous {
        dst.update(from: src.data, count: n)
        return
    }
    let rank = src.rank
    let inner = src.shape[rank - 1]
    let innerStride = src.strides[rank - 1]
    var index = [Int](repeating: 0, count: max(rank - 1, 0))
    var out = dst
    let base = src.storage.pointer + src.offset
    let rows = n / inner
    for _ in 0..<rows {
        var off = 0
        for a in 0..<(rank - 1) { off += index[a] * src.strides[a] }
        let p = base + off
        if innerStride == 1 {
            out.update(from: p, count: inner)
        } else {
            for j in 0..<inner { out[j] = p[j * innerStride] }
        }
        out += inner
        var a = rank - 2
        while a >= 0 {
            index[a] += 1
            if index[a] < src.shape[a] { break }
            index[a] = 0
            a -= 1
        }
    }
}
