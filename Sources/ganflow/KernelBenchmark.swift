import Dispatch
import TensorRuntime

/// Times the oneDNN-backed kernels at DCGAN-32 sizes (batch 64) and reports one line per op and
/// pass: median milliseconds and GFLOP/s, then the oneDNN implementation each primitive uses.
///
/// Forward is the op itself; backward is one `gradients` call with a given upstream gradient,
/// which computes both the input (data) and the weight gradient. Each op runs once untimed first,
/// so primitive creation (JIT) is not measured.
func runKernelBenchmark(repeats: Int = 20) throws -> String {
    var rng = PhiloxRandom(seed: 2024)
    struct Case {
        let name: String
        let inputShape: [Int]
        let weightShape: [Int]
        /// Multiply-adds of the forward pass, times two; each of the two backward kernels costs the same.
        /// Zero for memory-bound ops, which report GB/s of the tensors read and written instead.
        let flops: Double
        var bytes: (forward: Double, backward: Double) = (0, 0)
        let run: (Tensor, Tensor) throws -> Tensor
    }
    let n = 64
    let cases = [
        Case(name: "D conv 3->64 32x32->16x16 k4 s2 p1", inputShape: [n, 3, 32, 32], weightShape: [64, 3, 4, 4],
             flops: 2 * Double(n * 64 * 16 * 16) * Double(3 * 16)) {
            try conv2d($0, weight: $1, stride: 2, padding: 1)
        },
        Case(name: "D conv 64->128 16x16->8x8 k4 s2 p1", inputShape: [n, 64, 16, 16], weightShape: [128, 64, 4, 4],
             flops: 2 * Double(n * 128 * 8 * 8) * Double(64 * 16)) {
            try conv2d($0, weight: $1, stride: 2, padding: 1)
        },
        Case(name: "G convT 128->64 8x8->16x16 k4 s2 p1", inputShape: [n, 128, 8, 8], weightShape: [128, 64, 4, 4],
             flops: 2 * Double(n * 128 * 8 * 8) * Double(64 * 16)) {
            try convTranspose2d($0, weight: $1, stride: 2, padding: 1)
        },
        Case(name: "G convT 64->3 16x16->32x32 k4 s2 p1", inputShape: [n, 64, 16, 16], weightShape: [64, 3, 4, 4],
             flops: 2 * Double(n * 64 * 16 * 16) * Double(3 * 16)) {
            try convTranspose2d($0, weight: $1, stride: 2, padding: 1)
        },
        Case(name: "linear 1024->784", inputShape: [n, 1024], weightShape: [784, 1024],
             flops: 2 * Double(n * 1024 * 784)) {
            try linear($0, weight: $1)
        },
        // Training-mode batch norm of D's second block; forward reads x and writes y, backward
        // reads g and x and writes dx (4 bytes each per element).
        Case(name: "batch norm 128 ch 8x8 (train)", inputShape: [n, 128, 8, 8], weightShape: [128], flops: 0,
             bytes: (8 * Double(n * 128 * 64), 12 * Double(n * 128 * 64))) { x, gamma in
            try x.batchNorm(weight: gamma, bias: nil, runningMean: nil, runningVar: nil, training: true)
        },
        // The same with D's LeakyReLU(0.2) fused in (`Sequential` runs every batch norm followed by
        // a ReLU or leaky ReLU this way); backward also reads the output, for the mask.
        Case(name: "batch norm + leaky relu 128 ch 8x8", inputShape: [n, 128, 8, 8], weightShape: [128], flops: 0,
             bytes: (8 * Double(n * 128 * 64), 16 * Double(n * 128 * 64))) { x, gamma in
            try x.batchNorm(weight: gamma, bias: nil, runningMean: nil, runningVar: nil, training: true, leakySlope: 0.2)
        },
        // D's third block: 4x4 planes, so each channel's run is only 16 values.
        Case(name: "batch norm + leaky relu 256 ch 4x4", inputShape: [n, 256, 4, 4], weightShape: [256], flops: 0,
             bytes: (8 * Double(n * 256 * 16), 16 * Double(n * 256 * 16))) { x, gamma in
            try x.batchNorm(weight: gamma, bias: nil, runningMean: nil, runningVar: nil, training: true, leakySlope: 0.2)
        },
        // The two ops one after the other, as before the fusion.
        Case(name: "batch norm, then leaky relu (unfused)", inputShape: [n, 128, 8, 8], weightShape: [128], flops: 0,
             bytes: (16 * Double(n * 128 * 64), 24 * Double(n * 128 * 64))) { x, gamma in
            try x.batchNorm(weight: gamma, bias: nil, runningMean: nil, runningVar: nil, training: true)
                .leakyRelu(negativeSlope: 0.2)
        },
        // StyleGAN2's modulation at 32x32 (batch 32, 32 channels): a broadcasting product, memory
        // bound. Backward: g * s into dx, g * x and its sum over H and W into ds.
        Case(name: "modulation x * s [32,32,32,32]", inputShape: [32, 32, 32, 32], weightShape: [32, 32, 1, 1], flops: 0,
             bytes: (8 * Double(32 * 32 * 32 * 32), 24 * Double(32 * 32 * 32 * 32))) { x, s in
            try x * s
        },
        // StyleGAN2's FIR filter in D at 32x32 (batch 32, 32 channels): pad by one and blur with
        // [1, 3, 3, 1] (33x33 out), before a stride-2 convolution. Backward is the adjoint map.
        Case(name: "FIR blur [32,32,32,32] -> 33x33", inputShape: [32, 32, 32, 32], weightShape: [1], flops: 0,
             bytes: (4 * Double(32 * 32 * (32 * 32 + 33 * 33)), 4 * Double(32 * 32 * (32 * 32 + 33 * 33)))) { x, _ in
            try x.upfirdn2d(.binomial, padding: (2, 2))
        },
        // Its upsampling at the generator's 16x16 -> 32x32 (skip toRGB images use 1 channel; this is the
        // 32-channel case of a feature map).
        Case(name: "FIR upsample [32,32,16,16] -> 32x32", inputShape: [32, 32, 16, 16], weightShape: [1], flops: 0,
             bytes: (4 * Double(32 * 32 * (16 * 16 + 32 * 32)), 4 * Double(32 * 32 * (16 * 16 + 32 * 32)))) { x, _ in
            try x.upsample2d()
        },
    ]

    var lines = ["kernel benchmark: batch \(n), \(Runtime.threads) threads, \(repeats) repeats, median"]
    let clock = ContinuousClock()
    func milliseconds(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) * 1e-15
    }
    func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
    func pad(_ s: String, _ width: Int) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
    func fixed(_ x: Double, _ digits: Int) -> String {
        let scale = Double([1, 10, 100, 1000][digits])
        let r = (x * scale).rounded() / scale
        let text = String(r)
        let fraction = text.split(separator: ".").dropFirst().first?.count ?? 0
        return digits == 0 ? String(Int(r)) : text + String(repeating: "0", count: max(0, digits - fraction))
    }

    for c in cases {
        let x = Tensor(randomNormal: c.inputShape, std: 0.5, using: &rng).requiringGradients()
        let w = Tensor(randomNormal: c.weightShape, std: 0.05, using: &rng).requiringGradients()
        let warm = try c.run(x, w)
        let seed = Tensor(randomNormal: warm.shape, using: &rng)
        _ = try gradients(of: warm, wrt: [x, w], seed: seed)
        var forward: [Double] = [], backward: [Double] = []
        for _ in 0..<max(1, repeats) {
            let t0 = clock.now
            let y = try c.run(x, w)
            let t1 = clock.now
            _ = try gradients(of: y, wrt: [x, w], seed: seed)
            let t2 = clock.now
            forward.append(milliseconds(t1 - t0))
            backward.append(milliseconds(t2 - t1))
        }
        for (pass, times, flops, bytes) in [("forward", forward, c.flops, c.bytes.forward),
                                             ("backward data+weights", backward, 2 * c.flops, c.bytes.backward)] {
            let ms = median(times)
            let rate = flops > 0 ? fixed(flops / (ms * 1e6), 1) + " GFLOP/s" : fixed(bytes / (ms * 1e6), 1) + " GB/s"
            lines.append(pad(c.name, 38) + pad(pass, 23) + pad(fixed(ms, 3) + " ms", 12) + rate)
        }
    }
    lines.append("implementations:")
    for choice in DNNLDiagnostics.choices {
        lines.append("  \(choice)")
    }
    lines.append("oneDNN's instruction set on this CPU: \(DNNLDiagnostics.effectiveISA)")
    for type in [DNNLDiagnostics.DataType.f32, .bf16] {
        let found = DNNLDiagnostics.implementations(dataType: type)
        let none = "none (unimplemented on this CPU)"
        lines.append("  \(type.rawValue) sources and weights: convolution \(found.convolution ?? none), matmul \(found.matmul ?? none)")
    }
    return lines.joined(separator: "\n")
}

/// The fp32 multiply-add peak of this machine on `threads` threads, in GFLOP/s: each thread
/// runs twelve independent chains of SIMD8<Float> fused multiply-adds (enough to cover the FMA
/// latency on two pipes) from registers, and the best of `repeats` timings counts.
///
/// The build targets AVX2 + FMA (`-target-cpu haswell`), so each FMA is 256 bits wide: on Zen 4,
/// whose AVX-512 units are 256 bits wide, that is the full peak; on an Intel CPU with two
/// 512-bit FMA units it is half of it.
func measurePeakGFLOPs(threads: Int, iterations: Int = 20_000_000, repeats: Int = 3) -> Double {
    let flopsPerIteration = 12 * 8 * 2
    let sink = Locked<Float>(0)
    var best = 0.0
    for _ in 0..<max(1, repeats) {
        let start = DispatchTime.now().uptimeNanoseconds
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let total = fmaChains(iterations: iterations, seed: Float(t + 1))
            sink.withLock { $0 += total }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        best = max(best, Double(threads * iterations * flopsPerIteration) / seconds / 1e9)
    }
    // The sum is read so that the loops cannot be dropped.
    return sink.withLock { $0 }.isNaN ? .nan : best
}

/// Twelve chains of `iterations` FMAs each on SIMD8<Float>; returns the sum of every lane.
@inline(never)
private func fmaChains(iterations: Int, seed: Float) -> Float {
    let a = SIMD8<Float>(repeating: 0.999_999), b = SIMD8<Float>(repeating: 1e-7 * seed)
    var c0 = SIMD8<Float>(repeating: 0), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0
    var c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0
    for _ in 0..<iterations {
        c0 = c0.addingProduct(a, b); c1 = c1.addingProduct(a, b); c2 = c2.addingProduct(a, b)
        c3 = c3.addingProduct(a, b); c4 = c4.addingProduct(a, b); c5 = c5.addingProduct(a, b)
        c6 = c6.addingProduct(a, b); c7 = c7.addingProduct(a, b); c8 = c8.addingProduct(a, b)
        c9 = c9.addingProduct(a, b); c10 = c10.addingProduct(a, b); c11 = c11.addingProduct(a, b)
    }
    let sum = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11))
    return sum.sum()
}
