import Testing
@testable import TensorRuntime

/// The storage pool's size classes: a large buffer freed by one layer serves the next layer's
/// somewhat smaller request instead of a fresh mapping being faulted in.
@Suite struct StoragePoolTests {
    @Test func smallCountsAreTheirOwnClassLargeOnesRoundUpAnEighth() {
        #expect(StoragePool.sizeClass(1000) == 1000)
        #expect(StoragePool.sizeClass(StoragePool.exactLimit) == StoragePool.exactLimit)
        for count in [StoragePool.exactLimit + 1, 1_000_000, 3_333_333, 142_000_000] {
            let c = StoragePool.sizeClass(count)
            #expect(c >= count && Double(c) <= Double(count) * 1.125, "\(count) -> \(c)")
            #expect(StoragePool.sizeClass(c) == c)
            #expect(StoragePool.nextClass(c) > c && StoragePool.sizeClass(StoragePool.nextClass(c)) == StoragePool.nextClass(c))
        }
    }

    @Test func aFreedLargeBufferServesSmallerRequestsUpToHalfItsSize() {
        let pool = StoragePool()
        let (p, capacity) = pool.take(count: 1_000_000)
        #expect(capacity >= 1_000_000)
        pool.give(p, capacity: capacity)
        let (q, reused) = pool.take(count: 700_000)
        #expect(q == p && reused == capacity)
        pool.give(q, capacity: reused)
        // Less than half the free buffer: a buffer of its own class.
        let (r, own) = pool.take(count: 400_000)
        #expect(r != p && own == StoragePool.sizeClass(400_000))
        pool.give(r, capacity: own)
        // Trimming frees the largest idle buffers first.
        pool.trim(toIdleBytes: own * 4)
        let (t, _) = pool.take(count: 400_000)
        #expect(t == r)
        pool.give(t, capacity: own)
    }
}
