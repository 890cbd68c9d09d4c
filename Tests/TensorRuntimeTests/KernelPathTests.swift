import Foundation
import GANFlowTestSupport
import Testing
@testable import TensorRuntime

/// `KernelPath` overrides of the rules that choose the runtime's alternatives to oneDNN's
/// convolution kernels (what `ganflow bench --variant` times): each mode changes the choice, only
/// on the thread that set it, and results stay those of the kernels chosen.
@Suite struct KernelPathTests {
    typealias Case = WeightGradientAsForwardTests.Case

    /// DCGAN-32's second discriminator layer (64 -> 128 channels, dy 8x8), its last (dy 4x4), and
    /// its first (1 channel), at batches 16 and 4 (at 16 the swapped weight gradient pays).
    static let middle = Case(x: [16, 64, 16, 16], w: [128, 64, 4, 4], stride: [2, 2], padding: [1, 1], dilation: [1, 1], exact: true).geometry
    static let last = Case(x: [4, 128, 8, 8], w: [256, 128, 4, 4], stride: [2, 2], padding: [1, 1], dilation: [1, 1], exact: true).geometry
    static let first = Case(x: [4, 1, 32, 32], w: [64, 1, 4, 4], stride: [2, 2], padding: [1, 1], dilation: [1, 1], exact: true).geometry
    static let channelsLast = ConvStorage(input: .channelsLast, output: .channelsLast, kernelChannelsLast: true)

    @Test func parsesPathEqualsModeAndNamesWhatIsAccepted() throws {
        #expect(try KernelPath.parse("phases=never") == (.phases, .never))
        #expect(try KernelPath.parse("gemm=always") == (.gemm, .always))
        for (text, message) in [
            ("phases", "'phases': expected PATH=MODE, with PATH one of phases, swapped, gemm and MODE one of rule, always, never"),
            ("fast=never", "'fast=never': unknown kernel path 'fast'; one of phases, swapped, gemm"),
            ("swapped=often", "'swapped=often': unknown mode 'often' for swapped; one of rule, always, never"),
            ("gemm=never=1", "'gemm=never=1': expected PATH=MODE"),
        ] {
            #expect(throws: (any Error).self) { try KernelPath.parse(text) }
            do { _ = try KernelPath.parse(text) } catch { #expect("\(error)".contains(message), "\(error)") }
        }
    }

    /// The GEMM backward-data kernel: by its rule for fewer than 16 input channels only; `always`
    /// and `never` turn it on and off, and the primitive made under one mode is not handed out
    /// under the other (the preference is part of the cache key).
    @Test func gemmBackwardDataFollowsTheMode() throws {
        #expect(Self.first.prefersGEMMBackwardData && !Self.middle.prefersGEMMBackwardData)
        let (ruled, always, never) = try (
            ConvolutionPrimitives.backwardData(Self.middle),
            KernelPath.with([.gemm: .always]) { try ConvolutionPrimitives.backwardData(Self.middle) },
            KernelPath.with([.gemm: .never]) { try ConvolutionPrimitives.backwardData(Self.first) })
        #expect(!ruled.implementation.contains("gemm"), "\(ruled.implementation)")
        #expect(always.implementation.contains("gemm"), "\(always.implementation)")
        #expect(!never.implementation.contains("gemm"), "\(never.implementation)")
        #expect(try ConvolutionPrimitives.backwardData(Self.first).implementation.contains("gemm"))
        KernelPath.with([.gemm: .never]) {
            #expect(!Self.first.prefersGEMMBackwardData)
        }
        KernelPath.with([.gemm: .always]) {
            #expect(Self.middle.prefersGEMMBackwardData)
        }
    }

    /// The swapped weight gradient: its rule wants bf16, so in fp32 only `always` takes it; and
    /// the values are the ordinary kernel's within fp32 rounding.
    @Test func swappedWeightGradientFollowsTheModeInFP32() throws {
        let g = Self.middle
        #expect(ConvolutionPrimitives.weightGradientAsForward(g) == nil)
        #expect(KernelPath.with([.swapped: .always]) { ConvolutionPrimitives.weightGradientAsForward(g) } != nil)
        #expect(KernelPath.with([.swapped: .never]) { ConvolutionPrimitives.weightGradientAsForward(g, pays: false) } != nil,
                "tests' pays: false is not overridden")
        var rng = PhiloxRandom(seed: 5)
        let x = Tensor(randomNormal: g.input, using: &rng), dy = Tensor(randomNormal: g.output, using: &rng)
        let ordinary = try ConvolutionKernels.backwardWeights(x, dy, g).0.scalars
        let swapped = try KernelPath.with([.swapped: .always]) { try ConvolutionKernels.backwardWeights(x, dy, g).0.scalars }
        let scale = ordinary.map(abs).max()!
        let error = zip(ordinary, swapped).map { abs($0 - $1) }.max()!
        #expect(error <= 1e-5 * scale, "largest difference \(error) of \(scale)")
    }

    /// In bf16 both rules can be switched off where they pay, and the phases on where they do not
    /// (dy 8x8); the setting is the calling thread's only.
    @Test(.enabled(if: bf16Unavailable == nil, Comment(rawValue: bf16Unavailable ?? "")))
    func bf16PathsFollowTheModeOnTheCallingThreadOnly() {
        ComputePrecision.with(.bf16) {
            let amx = DNNLDiagnostics.effectiveISA == "avx512_core_amx"
            #expect((ConvolutionPrimitives.backwardDataAsPhases(Self.last, layouts: Self.channelsLast) != nil) == !amx)
            #expect(ConvolutionPrimitives.backwardDataAsPhases(Self.middle, layouts: Self.channelsLast) == nil)
            #expect(ConvolutionPrimitives.weightGradientAsForward(Self.middle) != nil)
            KernelPath.with([.phases: .never, .swapped: .never]) {
                #expect(ConvolutionPrimitives.backwardDataAsPhases(Self.last, layouts: Self.channelsLast) == nil)
                #expect(ConvolutionPrimitives.weightGradientAsForward(Self.middle) == nil)
                // Another thread keeps the rules.
                let elsewhere = Locked<[Bool]>([])
                let finished = DispatchGroup()
                finished.enter()
                Thread {
                    ComputePrecision.with(.bf16) {
                        let swapped = ConvolutionPrimitives.weightGradientAsForward(Self.middle) != nil
                        elsewhere.withLock { $0 = [swapped, KernelPath.phases.mode == .rule] }
                    }
                    finished.leave()
                }.start()
                finished.wait()
                #expect(elsewhere.withLock { $0 } == [true, true])
            }
            KernelPath.with([.phases: .always]) {
                #expect(ConvolutionPrimitives.backwardDataAsPhases(Self.middle, layouts: Self.channelsLast) != nil)
                #expect(ConvolutionPrimitives.backwardDataAsPhases(Self.last, layouts: Self.channelsLast) != nil)
            }
        }
    }
}
