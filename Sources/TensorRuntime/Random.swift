/// Philox4x32-10 (Salmon et al., SC 2011): a counter-based generator.
///
/// The n-th block of four numbers is a pure function of (key, n), so a stream's values do not
/// depend on which thread draws them or in which order stages run; a stream is resumed exactly from
/// its (seed, counter) pair, which is what a checkpoint stores.
public struct PhiloxRandom: Sendable, Equatable, Codable {
    public let seed: UInt64
    /// Index of the next 128-bit block.
    public var counter: UInt64
    /// Distinguishes independent streams derived from one seed (per stage, per rank).
    public let stream: UInt64
    private var buffer: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
    private var used = 4

    public init(seed: UInt64, stream: UInt64 = 0, counter: UInt64 = 0) {
        self.seed = seed
        self.stream = stream
        self.counter = counter
    }

    enum CodingKeys: String, CodingKey { case seed, counter, stream }

    public static func == (a: PhiloxRandom, b: PhiloxRandom) -> Bool {
        a.seed == b.seed && a.stream == b.stream && a.counter == b.counter && a.used == b.used
    }

    /// The block at `index` for this key.
    public func block(_ index: UInt64) -> (UInt32, UInt32, UInt32, UInt32) {
        var c0 = UInt32(truncatingIfNeeded: index), c1 = UInt32(truncatingIfNeeded: index >> 32)
        var c2 = UInt32(truncatingIfNeeded: stream), c3 = UInt32(truncatingIfNeeded: stream >> 32)
        var k0 = UInt32(truncatingIfNeeded: seed), k1 = UInt32(truncatingIfNeeded: seed >> 32)
        for _ in 0..<10 {
            let p0 = UInt64(0xD251_1F53) &* UInt64(c0)
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(c2)
            let n0 = UInt32(truncatingIfNeeded: p1 >> 32) ^ c1 ^ k0
            let n2 = UInt32(truncatingIfNeeded: p0 >> 32) ^ c3 ^ k1
            c1 = UInt32(truncatingIfNeeded: p1)
            c3 = UInt32(truncatingIfNeeded: p0)
            c0 = n0
            c2 = n2
            k0 = k0 &+ 0x9E37_79B9
            k1 = k1 &+ 0xBB67_AE85
        }
        return (c0, c1, c2, c3)
    }

    /// The next 32 random bits. Whole blocks are consumed, so the state after a draw is
    /// captured by `counter` alone once a block is finished; `alignToBlock()` forces that.
    public mutating func next() -> UInt32 {
        if used == 4 {
            buffer = block(counter)
            counter &+= 1
            used = 0
        }
        defer { used += 1 }
        switch used {
        case 0: return buffer.0
        case 1: return buffer.1
        case 2: return buffer.2
        default: return buffer.3
        }
    }

    /// Discards the rest of the current block, so `counter` alone describes the state.
    public mutating func alignToBlock() { used = 4 }

    /// Uniform in [0, 1).
    public mutating func nextUniform() -> Float {
        Float(next() >> 8) * (1.0 / 16_777_216.0)
    }

    /// Standard normal, by Box-Muller on two uniforms (one value per pair, for simplicity of state).
    public mutating func nextNormal() -> Float {
        let u1 = max(Float(next() >> 8) * (1.0 / 16_777_216.0), 1e-7)
        let u2 = Float(next() >> 8) * (1.0 / 16_777_216.0)
        return (-2 * logf(u1)).squareRoot() * cosf(2 * Float.pi * u2)
    }

    /// A generator for an independent stream derived from this one's seed.
    public func derived(stream: UInt64) -> PhiloxRandom {
        PhiloxRandom(seed: seed, stream: stream)
    }
}

extension Tensor {
    /// Values drawn from N(mean, std^2).
    public convenience init(randomNormal shape: [Int], mean: Float = 0, std: Float = 1, using rng: inout PhiloxRandom) {
        self.init(uninitialized: shape)
        let p = data
        for i in 0..<count { p[i] = mean + std * rng.nextNormal() }
    }

    /// Values drawn uniformly from [low, high).
    public convenience init(randomUniform shape: [Int], low: Float = 0, high: Float = 1, using rng: inout PhiloxRandom) {
        self.init(uninitialized: shape)
        let p = data
        for i in 0..<count { p[i] = low + (high - low) * rng.nextUniform() }
    }
}

#if canImport(Glibc)
import Glibc
#endif
