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
            (self.pointer, self.capacity) = StoragePool.shared.take(count: count)
            Profiler.add("storage allocate", nanos: Profiler.now() &- start)
        } else {
            (self.pointer, self.capacity) = StoragePool.shared.take(count: count)
        }
    }

    /// Elements the buffer holds, at least `count`: the pool's size class it came from.
    let capacity: Int

    /// Zero-filled storage for `count` floats.
    public convenience init(zeros count: Int) {
        self.init(count: count)
        Profiler.measure("storage zero fill") { pointer.initialize(repeating: 0, count: count) }
    }

    deinit {
        if Profiler.isEnabled {
            let start = Profiler.now()
            StoragePool.shared.give(pointer, capacity: capacity)
            Profiler.add("storage release", nanos: Profiler.now() &- start)
        } else {
            StoragePool.shared.give(pointer, capacity: capacity)
        }
    }
}

/// Free lists of aligned buffers keyed by size class.
///
/// Small buffers are kept by exact element count. Large ones (activations of a network at a
/// large batch, hundreds of MB) are rounded up to one of eight classes per doubling and served
/// by the smallest free buffer of up to twice the size asked for: a forward pass frees each
/// layer's output as the next one is made, so a few buffers then serve every layer of every
/// later pass instead of each layer's fresh allocation being mapped and faulted in again.
final class StoragePool: Sendable {
    static let shared = StoragePool()

    /// Buffers kept per size class; beyond this they are freed. A StyleGAN2 step at 32x32 keeps
    /// more than 16 activations of one size alive for its backward; at 16 per class the rest were
    /// freed each step and mapped and faulted in again the next (164k page faults in a 10-step
    /// `ganflow bench --model stylegan2_32`, 86k at 64, and the step 10-20% faster). The idle
    /// total stays bounded by `maxIdleBytes`.
    private let maxPerSize = 64
    /// Total bytes the pool keeps idle at most: an eighth of the physical memory, at least 512 MiB.
    private let maxIdleBytes = max(512 << 20, sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE)) / 8)
    /// Counts up to this are their own size class.
    static let exactLimit = 1 << 16

    private struct State {
        var free: [Int: [UInt]] = [:]  // addresses, which are Sendable
        var idleBytes = 0
    }
    private let state = Locked(State())

    /// The capacity of the buffers that serve `count` elements.
    static func sizeClass(_ count: Int) -> Int {
        guard count > exactLimit else { return count }
        let step = 1 << (Int.bitWidth - count.leadingZeroBitCount - 4)
        return (count + step - 1) & ~(step - 1)
    }

    /// The next larger size class above `sizeClass`, a class itself.
    static func nextClass(_ sizeClass: Int) -> Int {
        sizeClass + (1 << (Int.bitWidth - sizeClass.leadingZeroBitCount - 4))
    }

    /// A buffer of at least `count` elements and its capacity.
    func take(count: Int) -> (UnsafeMutablePointer<Float>, Int) {
        let wanted = Self.sizeClass(count)
        if let (address, capacity) = state.withLock({ s -> (UInt, Int)? in
            var c = wanted
            while true {
                if var list = s.free[c], let p = list.popLast() {
                    s.free[c] = list
                    s.idleBytes -= c * 4
                    return (p, c)
                }
                guard c > Self.exactLimit else { return nil }
                c = Self.nextClass(c)
                if c > 2 * wanted { return nil }
            }
        }) {
            return (UnsafeMutablePointer(bitPattern: address)!, capacity)
        }
        let bytes = max(64, (wanted * MemoryLayout<Float>.stride + 63) & ~63)
        guard let raw = aligned_alloc(64, bytes) else {
            fatalError("out of memory allocating \(bytes) bytes")
        }
        return (raw.bindMemory(to: Float.self, capacity: max(wanted, 1)), wanted)
    }

    /// Frees idle buffers, largest first, until at most `bytes` are kept idle.
    func trim(toIdleBytes bytes: Int) {
        let freed = state.withLock { s -> [UInt] in
            var out: [UInt] = []
            for capacity in s.free.keys.sorted(by: >) where s.idleBytes > bytes {
                var list = s.free[capacity]!
                while s.idleBytes > bytes, let p = list.popLast() {
                    out.append(p)
                    s.idleBytes -= capacity * 4
                }
                s.free[capacity] = list.isEmpty ? nil : list
            }
            return out
        }
        for address in freed { free(UnsafeMutableRawPointer(bitPattern: address)) }
    }

    func give(_ pointer: UnsafeMutablePointer<Float>, capacity: Int) {
        let address = UInt(bitPattern: pointer)
        let kept = state.withLock { s -> Bool in
            var list = s.free[capacity] ?? []
            guard list.count < maxPerSize, s.idleBytes + capacity * 4 <= maxIdleBytes else { return false }
            list.append(address)
            s.free[capacity] = list
            s.idleBytes += capacity * 4
            return true
        }
        if !kept { free(pointer) }
    }
}

#if canImport(Glibc)
import Glibc
#endif
