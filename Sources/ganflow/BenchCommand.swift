import ArgumentParser
import Foundation
import TensorRuntime

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time GAN training steps (and kernels), optionally interleaved with the PyTorch reference.",
        discussion: """
            Prints one JSON line per measurement, with the same fields as torch_reference.py.
            With --torch PYTHON, each round runs GANFlow's steps and then the reference in a
            subprocess, alternately, and the last line gives the ratio of medians
            (GANFlow / PyTorch; below 1 is faster).
            With --profile, each model then runs --steps more steps with the runtime's profiler on
            and prints per-op calls, self and inclusive milliseconds per step, and GFLOP/s of
            convolution and matmul kernels; self times add up to the step.
            With --variant PATH=MODE, each round runs GANFlow's steps as shipped and then with that
            kernel path's rule overridden, alternately, and the last line gives the ratio of
            medians (variant / shipped), of each pair, and the median of those. Paths: phases
            (backward-data in phases), swapped (the weight gradient as a swapped forward
            convolution), gemm (oneDNN's GEMM backward-data kernel); modes: rule, always (wherever
            exact), never. For measuring the rules on another CPU, e.g. --precision bf16
            --variant phases=always on AMX.
            """)

    @Option(help: "Models: mlp, dcgan32, dcgan64, progan32, msggan32, stylegan2_32 (comma-separated).")
    var model: String = "dcgan32"

    @Option(help: "Batch size.")
    var batch: Int = 64

    @Option(help: "Kernel threads.")
    var threads: Int = 2

    @Option(help: "Timed steps per round.")
    var steps: Int = 20

    @Option(help: "Untimed steps before timing.")
    var warmup: Int = 3

    @Option(help: "Interleaved rounds (with --torch or --variant).")
    var rounds: Int = 3

    @Option(help: "Python with torch installed, to run the reference interleaved (e.g. ~/torchref/bin/python).")
    var torch: String?

    @Option(help: "Path of torch_reference.py (default: the project's Scripts/bench/torch_reference.py, found from the executable's or the package's location).")
    var reference: String?

    @Option(help: "What GANFlow's convolutions and matrix products compute in: fp32 or bf16 (the PyTorch reference stays fp32).")
    var precision: String = "fp32"

    @Option(help: "Override a kernel path's rule, PATH=MODE (repeatable, or comma-separated): paths phases, swapped, gemm; modes rule, always, never. Rounds then alternate between the rules as shipped and this variant.")
    var variant: [String] = []

    @Flag(help: "First measure this machine's fp32 FMA peak on --threads threads (a vectorised Swift loop) and print it; each model's line then gives its GFLOP/s as a share of it.")
    var peak = false

    @Flag(help: "Also time single kernels (conv, transposed conv, linear) at DCGAN sizes.")
    var kernels = false

    @Flag(help: "After timing, run --steps more steps with the runtime's profiler on and print where a step spends its time (per op: calls, self and inclusive ms per step, GFLOP/s of convolutions and matmuls).")
    var profile = false

    func validate() throws {
        if ComputePrecision(rawValue: precision) == nil {
            throw ValidationError("--precision must be one of \(ComputePrecision.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        do {
            _ = try overrides()
        } catch {
            throw ValidationError("--variant \(error)")
        }
        if !variant.isEmpty && torch != nil {
            throw ValidationError("--variant and --torch: choose one (a variant is timed against GANFlow as shipped)")
        }
    }

    /// The kernel paths overridden by --variant, and their description as given (`phases=never`).
    func overrides() throws -> (modes: [KernelPath: KernelPath.Mode], label: String)? {
        let items = variant.flatMap { $0.split(separator: ",").map(String.init) }
        guard !items.isEmpty else { return nil }
        var modes: [KernelPath: KernelPath.Mode] = [:]
        for item in items {
            let (path, mode) = try KernelPath.parse(item)
            modes[path] = mode
        }
        return (modes, items.joined(separator: ","))
    }

    func run() throws {
        let precision = ComputePrecision(rawValue: self.precision)!
        do {
            try precision.checkAvailable()
        } catch {
            throw report(error)
        }
        try ComputePrecision.with(precision) { try runBenchmarks() }
    }

    func runBenchmarks() throws {
        Runtime.configure(threads: threads)
        var peakGFLOPs: Double?
        if peak {
            let gflops = measurePeakGFLOPs(threads: threads)
            peakGFLOPs = gflops
            print(#"{"peak_gflop_per_s": \#(fmt(gflops)), "threads": \#(threads), "loop": "SIMD8<Float> fused multiply-add, 12 chains per thread"}"#)
        }
        if kernels { print(try runKernelBenchmark(repeats: 10)) }
        let variant = try overrides()
        for name in model.split(separator: ",").map(String.init) {
            var bench = try makeStepBenchmark(model: name, batch: batch)
            var ours: [Double] = [], theirs: [Double] = [], varied: [Double] = []
            for round in 0..<(torch == nil && variant == nil ? 1 : rounds) {
                let times = try bench.time(steps: steps, warmup: round == 0 ? warmup : 1)
                ours.append(median(times))
                print(line(bench, times, peak: peakGFLOPs, variant: variant == nil ? nil : "shipped"))
                if let variant {
                    // The variant's first round warms up as the first did (its primitives are new).
                    let times = try KernelPath.with(variant.modes) { try bench.time(steps: steps, warmup: round == 0 ? warmup : 1) }
                    varied.append(median(times))
                    print(line(bench, times, peak: peakGFLOPs, variant: variant.label))
                }
                if let torch {
                    let out = try runReference(torch, model: name)
                    print(out)
                    if let ms = extractMedian(out) { theirs.append(ms / 1000) }
                }
            }
            if profile {
                print(try profileSteps(&bench))
                if let variant {
                    print(try KernelPath.with(variant.modes) { try profileSteps(&bench, variant: variant.label) })
                }
            }
            if let variant {
                // Each variant round against the shipped round just before it: the machine's speed
                // drifts, and a pair sees the same drift, so their median is the steadier figure.
                let pairs = zip(varied, ours).map { $0 / $1 }
                let shown = pairs.map { String(format: "%.3f", $0) }.joined(separator: ", ")
                print(#"{"model": "\#(name)", "variant": "\#(variant.label)", "shipped_median_ms": \#(fmt(median(ours) * 1000)), "variant_median_ms": \#(fmt(median(varied) * 1000)), "ratio": \#(String(format: "%.3f", median(varied) / median(ours))), "pair_ratios": [\#(shown)], "pair_median": \#(String(format: "%.3f", median(pairs))), "rounds": \#(rounds)}"#)
            }
            if !theirs.isEmpty {
                let ratio = median(ours) / median(theirs)
                print(#"{"model": "\#(name)", "ganflow_median_ms": \#(fmt(median(ours) * 1000)), "torch_median_ms": \#(fmt(median(theirs) * 1000)), "ratio": \#(String(format: "%.3f", ratio)), "rounds": \#(rounds), "ganflow_peak_rss_mb": \#(fmt(peakRSS(RUSAGE_SELF.rawValue))), "torch_peak_rss_mb": \#(fmt(peakRSS(RUSAGE_CHILDREN.rawValue)))}"#)
            }
        }
    }

    /// Runs `steps` steps with the profiler on; the table is per step.
    func profileSteps(_ bench: inout any TrainingStepBenchmark, variant: String? = nil) throws -> String {
        Profiler.reset()
        Profiler.isEnabled = true
        let t = DispatchTime.now().uptimeNanoseconds
        defer { Profiler.isEnabled = false }
        for _ in 0..<steps {
            try Profiler.measure("step (outside any op)") { try bench.step() }
        }
        let wall = Double(DispatchTime.now().uptimeNanoseconds - t) / 1e6 / Double(steps)
        let header = "profile: \(bench.name)\(variant.map { " with " + $0 } ?? ""), batch \(bench.batch), \(threads) threads, \(steps) steps, "
            + "\(fmt(wall)) ms per step with the profiler on; times per step"
        return header + "\n" + Profiler.report(steps: steps)
    }

    /// One model's timing; with `peak` (GFLOP/s), also its share of it; with `variant`, which one it timed.
    func line(_ b: any TrainingStepBenchmark, _ times: [Double], peak peakGFLOPs: Double?, variant: String? = nil) -> String {
        let med = median(times)
        return #"{"framework": "ganflow", "model": "\#(b.name)", "batch": \#(b.batch), "threads": \#(threads), "precision": "\#(precision)", \#(variant.map { #""variant": "\#($0)", "# } ?? "")"median_ms": \#(fmt(med * 1000)), "min_ms": \#(fmt(times.min()! * 1000)), "max_ms": \#(fmt(times.max()! * 1000)), "images_per_s": \#(fmt(Double(b.batch) / med)), "gflop_per_step": \#(fmt(b.gflopPerStep)), "gflop_per_s": \#(fmt(b.gflopPerStep / med)), \#(peakGFLOPs.map { #""share_of_peak": \#(String(format: "%.3f", b.gflopPerStep / med / $0)), "# } ?? "")"peak_rss_mb": \#(fmt(peakRSS(RUSAGE_SELF.rawValue)))}"#
    }

    func fmt(_ x: Double) -> String { String(format: "%.2f", x) }

    /// Peak resident memory in MB of this process (`RUSAGE_SELF`) or of the largest reference
    /// subprocess waited for so far (`RUSAGE_CHILDREN`): with models benchmarked smallest first,
    /// the peak so far is the current model's.
    func peakRSS(_ who: __rusage_who_t) -> Double {
        var usage = rusage()
        getrusage(who, &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    func runReference(_ python: String, model: String) throws -> String {
        let reference = try self.reference
            ?? ProjectFile.locate("Scripts/bench/torch_reference.py", what: "the PyTorch reference", option: "--reference")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: (python as NSString).expandingTildeInPath)
        p.arguments = [reference, "--model", model, "--batch", String(batch), "--threads", String(threads),
                       "--steps", String(steps), "--warmup", String(warmup)]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw ValidationErrorText("the reference exited with status \(p.terminationStatus): \(python) \(reference)")
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func extractMedian(_ json: String) -> Double? {
        guard let r = json.range(of: "\"median_ms\": ") else { return nil }
        return Double(json[r.upperBound...].prefix { $0.isNumber || $0 == "." })
    }
}
