#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorRuntime

/// The sizes of a progressive GAN (Karras et al., ICLR 2018): resolutions from 4x4 to `target`,
/// and the feature maps of each, `nf(stage) = min(fmapBase / 2^(stage * fmapDecay), fmapMax)` with
/// stage 1 the 4x4 block, as `nf` in the official code.
public struct ProGANArchitecture: Sendable, Equatable {
    public var target: Int
    public var channels: Int
    public var fmapBase: Int
    public var fmapDecay: Double
    public var fmapMax: Int

    /// Throws unless `target` is 4 times a power of two.
    public init(target: Int, channels: Int, fmapBase: Int = 8192, fmapDecay: Double = 1, fmapMax: Int = 512) throws {
        guard target >= 4, target & (target - 1) == 0 else {
            throw TensorError("ProGAN: the target resolution must be a power of two of at least 4, not \(target)")
        }
        self.target = target
        self.channels = channels
        self.fmapBase = fmapBase
        self.fmapDecay = fmapDecay
        self.fmapMax = fmapMax
    }

    /// 4, 8, ..., target.
    public var resolutions: [Int] { (0..<levels).map { 4 << $0 } }
    public var levels: Int { target.trailingZeroBitCount - 1 }

    /// Feature maps of official stage `stage` (1 is the 4x4 block, 0 the discriminator's dense layer).
    public func features(stage: Int) -> Int {
        max(1, min(Int(Double(fmapBase) / pow(2, Double(stage) * fmapDecay)), fmapMax))
    }

    /// The level of `resolution` (0 for 4x4), or an error naming the resolutions this network has.
    public func level(_ resolution: Int) throws -> Int {
        guard let k = resolutions.firstIndex(of: resolution) else {
            throw TensorError("resolution \(resolution) is not one of this network's \(resolutions.map(String.init).joined(separator: ", "))")
        }
        return k
    }
}

