import GANFlowTestSupport
import Foundation
import Testing
@testable import TensorRuntime

/// bf16 compute against fp32 on the same inputs.
///
/// bf16 keeps 8 significant bits, so each source and weight is rounded by up to 2^-9 relative
/// (0.2%); with fp32 accumulation a dot product of K random-signed terms is off by about
/// 0.2% / sqrt(K) of the sum of |terms|. The tolerance is 1% of the largest fp32 magnitude of
/// each result (measured on Zen 4: 0.17-0.39%), 3% for a penalty's second-order gradients
/// (measured 0.5-1.2%: the first-order gradient is rounded again as the next kernel's source);
/// each result must also differ from fp32 somewhere (else the kernel did not run in bf16 and
/// the test proves nothing).
@Suite(.enabled(if: bf16Unavailable == nil, Comment(rawValue: bf16Unavailable ?? "")))
struct BF16Tests {

    /// max |bf16 - fp32| / max |fp32|.
    static func scaledError(_ bf16: Tensor, _ fp32: Tensor) -> Float {
        let a = bf16.scalars, b = fp32.scalars
        precondition(a.count == b.count)
        let scale = b.map(abs).max() ?? 1
        return zip(a, b).map { abs($0 - $1) }.max()! / max(scale, 1e-30)
    }

    /// Runs `body` in fp32 and in bf16, and checks each pair of results.
    static func compare(_ what: String, tolerance: Float = 0.01, _ body: () throws -> [Tensor],
                        sourceLocation: SourceLocation = #_sourceLocation) throws {
        let fp32 = try ComputePrecision.with(.fp32, body)
        let bf16 = try ComputePrecision.with(.bf16, body)
        for (i, (b, f)) in zip(bf16, fp32).enumerated() {
            let error = scaledError(b, f)
            #expect(error <= tolerance, "\(what) result \(i): bf16 is off fp32 by \(error) of its largest magnitude", sourceLocation: sourceLocation)
            #expect(b.scalars != f.scalars, "\(what) result \(i): bf16 gave exactly the fp32 values", sourceLocation: sourceLocation)
        }
    }

    @Test func convolutionForwardAndGradients() throws {
        var rng = PhiloxRandom(seed: 11)
        let x = Tensor(randomNormal: [4, 16, 12, 12], using: &rng).requiringGradients()
        let w = Tensor(randomNormal: [32, 16, 4, 4], std: 0.1, using: &rng).requiringGradients()
        let b = Tensor(randomNormal: [32], using: &rng).requiringGradients()
        let seed = Tensor(randomNormal: [4, 32, 6, 6], using: &rng)
        try Self.compare("conv2d") {
            let y = try conv2d(x, weight: w, bias: b, stride: 2, padding: 1)
            return [y] + (try gradients(of: y, wrt: [x, w], seed: seed))
        }
    }

    @Test func transposedConvolutionForwardAndGradients() throws {
        var rng = PhiloxRandom(seed: 12)
        let x = Tensor(randomNormal: [4, 32, 6, 6], using: &rng).requiringGradients()
        let w = Tensor(randomNormal: [32, 16, 4, 4], std: 0.1, using: &rng).requiringGradients()
        let seed = Tensor(randomNormal: [4, 16, 12, 12], using: &rng)
        try Self.compare("convTranspose2d") {
            let y = try convTranspose2d(x, weight: w, stride: 2, padding: 1)
            return [y] + (try gradients(of: y, wrt: [x, w], seed: seed))
        }
    }

    /// Backward-data into fewer than 16 channels (an image's gradient, a generator's last
    /// transposed convolution) runs on oneDNN's GEMM-based kernel in bf16 too (fp32's kernel
    /// and values against a naive loop: `ConvolutionTests`' transposed convolutions into 2 channels).
    @Test(arguments: [1, 3])
    func imageChannelBackwardData(channels: Int) throws {
        var rng = PhiloxRandom(seed: 13)
        let x = Tensor(randomNormal: [4, channels, 16, 16], using: &rng).requiringGradients()
        let w = Tensor(randomNormal: [32, channels, 4, 4], std: 0.1, using: &rng).requiringGradients()
        let seed = Tensor(randomNormal: [4, 32, 8, 8], using: &rng)
        try Self.compare("conv2d into \(channels) channels") {
            let y = try conv2d(x, weight: w, stride: 2, padding: 1)
            let image = try convTranspose2d(seed, weight: w, stride: 2, padding: 1)
            return [y, image] + (try gradients(of: y, wrt: [x, w], seed: seed))
        }
        let g = ConvGeometry(input: [4, channels, 16, 16], weight: [32, channels, 4, 4], output: [4, 32, 8, 8],
                             stride: [2, 2], padding: [1, 1], dilation: [1, 1])
        let bf16 = try ComputePrecision.with(.bf16) { try ConvolutionPrimitives.backwardData(g).implementation }
        #expect(bf16.hasPrefix("x64:gemm"), "\(bf16)")
    }

    @Test func matmulLinearAndFullyConnectedConvolution() throws {
        var rng = PhiloxRandom(seed: 13)
        let x = Tensor(randomNormal: [16, 96], using: &rng).requiringGradients()
        let w = Tensor(randomNormal: [40, 96], std: 0.1, using: &rng).requiringGradients()
        let bias = Tensor(randomNormal: [40], using: &rng).requiringGradients()
        let v = Tensor(randomNormal: [16, 24], using: &rng).requiringGradients()
        let image = Tensor(randomNormal: [8, 6, 4, 4], using: &rng).requiringGradients()
        let kernel = Tensor(randomNormal: [10, 6, 4, 4], std: 0.1, using: &rng).requiringGradients()
        try Self.compare("linear") {
            let y = try linear(x, weight: w, bias: bias)
            return [y] + (try gradients(of: y.square().sum(), wrt: [x, w]))
        }
        try Self.compare("matmul A^T") {
            let y = try matmul(x, v, transposeA: true)
            return [y] + (try gradients(of: y.square().sum(), wrt: [x, v]))
        }
        // A 4x4 window over a 4x4 input runs as a matmul.
        try Self.compare("conv2d as matmul") {
            let y = try conv2d(image, weight: kernel)
            return [y] + (try gradients(of: y.square().sum(), wrt: [image, kernel]))
        }
    }

    /// A product bound by memory (a matrix-vector or outer product, such as a discriminator's
    /// last layer to one score) stays fp32 in bf16 mode; one with enough work per element does not.
    @Test func memoryBoundMatmulStaysFP32() throws {
        var rng = PhiloxRandom(seed: 16)
        let x = Tensor(randomNormal: [32, 512], using: &rng).requiringGradients()
        let w = Tensor(randomNormal: [1, 512], std: 0.1, using: &rng).requiringGradients()
        let run = {
            let y = try linear(x, weight: w)
            return [y] + (try gradients(of: y.square().sum(), wrt: [x, w]))
        }
        let fp32 = try ComputePrecision.with(.fp32, run)
        let bf16 = try ComputePrecision.with(.bf16, run)
        for (b, f) in zip(bf16, fp32) { #expect(b.scalars == f.scalars) }
        let vector = MatMulGeometry(batch: nil, m: 32, k: 512, n: 1, transposeA: false, transposeB: true, bias: false)
        let outer = MatMulGeometry(batch: nil, m: 32, k: 1, n: 512, transposeA: false, transposeB: false, bias: false)
        let square = MatMulGeometry(batch: nil, m: 8, k: 96, n: 10, transposeA: false, transposeB: true, bias: false)
        #expect(!vector.bf16Pays && !outer.bf16Pays && square.bf16Pays)
        let chosen = try ComputePrecision.with(.bf16) { try MatMulPrimitives.matmul(square).implementation }
        #expect(chosen.contains("bf16"), "\(chosen)")
    }

    /// A gradient penalty's double backward (the recorded backward of a convolution is
    /// convolutions again) runs in bf16 as well.
    @Test func gradientPenaltyDoubleBackward() throws {
        var rng = PhiloxRandom(seed: 14)
        let x = Tensor(randomNormal: [4, 8, 8, 8], using: &rng).requiringGradients()
        let w1 = Tensor(randomNormal: [16, 8, 3, 3], std: 0.2, using: &rng).requiringGradients()
        let w2 = Tensor(randomNormal: [1, 16, 8, 8], std: 0.05, using: &rng).requiringGradients()
        try Self.compare("R1 penalty", tolerance: 0.03) {
            let h = try conv2d(x, weight: w1, padding: 1).tanh()
            let score = try conv2d(h, weight: w2).sum()
            let dx = try gradients(of: score, wrt: [x], createGraph: true)[0]
            let penalty = try dx.square().sum()
            return [dx] + (try gradients(of: penalty, wrt: [w1, w2]))
        }
    }

    /// The kernels really are oneDNN's bf16 ones, and fp32 and bf16 primitives of one shape are
    /// cached apart.
    @Test func primitivesUseBF16Kernels() throws {
        var rng = PhiloxRandom(seed: 15)
        let x = Tensor(randomNormal: [2, 16, 10, 10], using: &rng)
        let w = Tensor(randomNormal: [16, 16, 3, 3], using: &rng)
        let fp32 = try conv2d(x, weight: w, dilation: 2)
        let bf16 = try ComputePrecision.with(.bf16) { try conv2d(x, weight: w, dilation: 2) }
        #expect(fp32.scalars != bf16.scalars)
        let detail = "x [2, 16, 10, 10] w [16, 16, 3, 3] y [2, 16, 6, 6] stride [1, 1] padding [0, 0] dilation [2, 2]"
        let choices = DNNLDiagnostics.choices.filter { $0.primitive.hasPrefix("conv.forward \(detail)") }
        let implementations = Dictionary(choices.map { ($0.primitive, $0.implementation) }, uniquingKeysWith: { a, _ in a })
        #expect(implementations["conv.forward \(detail)"].map { !$0.contains("bf16") } == true)
        #expect(implementations["conv.forward \(detail) [bf16]"]?.contains("bf16") == true, "\(implementations)")
    }

    /// Precision is per thread: another thread stays fp32 while this one is in bf16.
    @Test func precisionIsPerThread() throws {
        let inside = ComputePrecision.with(.bf16) { ComputePrecision.current }
        #expect(inside == .bf16)
        #expect(ComputePrecision.current == .fp32)
        let other = ComputePrecision.with(.bf16) {
            let box = Locked<ComputePrecision?>(nil)
            let thread = Thread { box.withLock { $0 = ComputePrecision.current } }
            thread.start()
            while box.withLock({ $0 }) == nil { usleep(1000) }
            return box.withLock { $0 }
        }
        #expect(other == .fp32)
    }
}
