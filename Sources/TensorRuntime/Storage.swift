
/// A 64-byte aligned buffer of Float32 values, returned to a size-bucketed pool when released.
///
/// Training runs the same step over and over, so the same sizes come back every step; the pool
/// turns steady-state allocation into a free-list pop.
public final class Storage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    /// Capacity in elements.
    public let count: Int

    /// Uninitialised storage for `count` floats.
    public init(count: Int) {
        precondition(count >= 0, "negative storage size")
        self.count = count
        if Profiler.isEnabled {
            let start = Profiler.now()
            self.pointer = StoragePool.shared.take(count: count)
            Profiler.add("storage allocate", nanos: Profiler.now() &- start)
        } else {
            self.pointer = StoragePool.shared.take(count: count)
        }
    }

    /// Zero-filled storage for `count` floats.
    public convenience init(zeros count: Int) {
        self.init(count: count)
        Profiler.measure("storage zero fill") { pointer.initialize(repeating: 0, count: count) }
    }

    deinit {
        if Profiler.isEnabled {
            let start = Profiler.now()
            StoragePool.shared.give(pointer, count: count)
            Profiler.add("storage release", nanos: Profiler.now() &- start)
        } else {
            StoragePool.shared.give(pointer, count: count)
        }
    }
}

/// Free lists of aligned buffers keyed by element count.
final class StoragePool: Sendable {
    static let shared = StoragePool()

    /// Buffers kept per size; beyond this they are freed.
    private let maxPerSize = 16
    /// Total bytes the pool keeps idle at most.
    private let maxIdleBytes = 512 << 20

    private struct State {
        var free: [Int: [UInt]] = [:]  // addresses, which are Sendable
        var idleBytes = 0
    }
    private let state = Locked(State())

    func take(count: Int) -> UnsafeMutablePointer<Float> {
        if let address = state.withLock({ s -> UInt? in
            guard var list = s.free[count], let p = list.popLast() else { return nil }
            s.free[count] = list
            s.idleBytes -= count * 4
            return p
        }) {
            return UnsafeMutablePointer(bitPattern: address)!
        }
        let bytes = max(64, (count * MemoryLayout<Float>.stride + 63) & ~63)
        guard let raw = aligned_alloc(64, bytes) else {
            fatalError("out of memory allocating \(bytes) bytes")
        }
        return raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    func give(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        let address = UInt(bitPattern: pointer)
        let kept = state.withLock { s -> Bool in
            var list = s.free[count] ?? []
            guard list.count < maxPerSize, s.idleBytes + count * 4 <= maxIdleBytes else { return false }
            list.append(address)
            s.free[count] = list
            s.idleBytes += count * 4
            return true
        }
        if !kept { free(pointer) }
    }
}

#if canImport(Glibc)
import Glibc
#endif
