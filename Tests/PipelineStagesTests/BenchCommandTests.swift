import Foundation
import Testing

/// `ganflow bench --peak --kernels --profile` through the binary, as the README's Commands table
/// describes it: the FMA peak, every kernel's time and implementation, the instruction set oneDNN
/// found, the model's step with its share of the peak, and a per-op profile whose self times add
/// up to the step. (The timing against PyTorch is `TorchInteropTests`.) Values are timings, so
/// only their presence, form and consistency are checked, never their size.
@Suite struct BenchCommandTests {
    static func number(after key: String, in line: Substring) -> Double? {
        guard let r = line.range(of: key) else { return nil }
        let rest = line[r.upperBound...].drop { $0 == " " }
        return Double(rest.prefix { "0123456789.".contains($0) })
    }

    @Test func peakKernelsAndProfileOfOneModel() throws {
        let (status, output) = try execute(ganflowExecutable, ["bench", "--model", "mlp", "--steps", "1", "--warmup", "1",
                                                               "--threads", "1", "--peak", "--kernels", "--profile"],
                                           directory: temporaryDirectory("bench-flags"))
        #expect(status == 0, "\(output)")
        let lines = output.split(separator: "\n")

        let peakLine = try #require(lines.first { $0.hasPrefix(#"{"peak_gflop_per_s": "#) }, "\(output)")
        let peak = try #require(Self.number(after: #""peak_gflop_per_s":"#, in: peakLine))
        #expect(peak > 0)

        #expect(lines.contains { $0.hasPrefix("kernel benchmark: batch 64, 1 threads") }, "\(output)")
        for kernel in ["D conv 3->64", "G convT 128->64", "linear 1024->784", "batch norm 128 ch"] {
            #expect(lines.filter { $0.hasPrefix(kernel) }.count == 2, "forward and backward of \(kernel)")
        }
        #expect(lines.contains { $0.hasPrefix("  conv.forward x [64, 3, 32, 32]") && $0.contains(": ") }, "\(output)")
        let isa = try #require(lines.first { $0.hasPrefix("oneDNN's instruction set on this CPU: ") })
        #expect(isa.count > "oneDNN's instruction set on this CPU: ".count)
        #expect(lines.contains { $0.hasPrefix("  f32 sources and weights: convolution ") })

        let model = try #require(lines.first { $0.hasPrefix(#"{"framework": "ganflow", "model": "mlp""#) }, "\(output)")
        #expect(model.contains(#""precision": "fp32""#))
        let share = try #require(Self.number(after: #""share_of_peak":"#, in: model), "\(model)")
        let rate = try #require(Self.number(after: #""gflop_per_s":"#, in: model))
        // Both are printed to 2 decimals: allow for that rounding (a debug build's peak is small).
        let rounding = (rate / peak) * (0.005 / peak + 0.005 / rate) * 1.01 + 0.0005
        #expect(abs(share - rate / peak) <= rounding, "share \(share) of \(rate) / \(peak)")

        let header = try #require(lines.first { $0.hasPrefix("profile: mlp, batch 64, 1 threads, 1 steps, ") }, "\(output)")
        let stepMs = try #require(Self.number(after: "1 steps,", in: header))
        let sumLine = try #require(lines.first { $0.hasPrefix("sum of self times") })
        let sum = try #require(Self.number(after: "sum of self times", in: sumLine))
        #expect(abs(sum - stepMs) <= 0.02 * stepMs + 0.02, "self times \(sum) ms against the step's \(stepMs) ms")
        #expect(lines.contains { $0.hasPrefix("adam ") }, "the optimizer's op in the profile")
    }

    /// Every model of the README's `--model` list times a step (one step at batch 4, no warm-up:
    /// what is checked is that each builds, trains and reports, not its speed).
    @Test func everyModelOfTheListTimesAStep() throws {
        let models = ["dcgan32", "dcgan64", "progan32", "msggan32", "stylegan2_32"]
        let (status, output) = try execute(ganflowExecutable, ["bench", "--model", models.joined(separator: ","), "--steps", "1", "--warmup", "0",
                                                               "--batch", "4", "--threads", "1"])
        #expect(status == 0, "\(output)")
        for model in models {
            let line = try #require(output.split(separator: "\n").first { $0.hasPrefix(#"{"framework": "ganflow", "model": "\#(model)", "batch": 4,"#) },
                                    "\(model): \(output)")
            #expect((Self.number(after: #""median_ms":"#, in: line) ?? 0) > 0, "\(line)")
            // FLOPs are counted for every model, StyleGAN2's included (README, Benchmark).
            let flops = Self.number(after: #""gflop_per_step":"#, in: line) ?? -1
            #expect(flops > 0, "\(line)")
        }
    }

    /// `--variant`: rounds alternate between the rules as shipped and the overridden ones, each
    /// line says which it timed, and the last gives the ratio of medians and of each pair; with
    /// `--profile`, a second table for the variant. Malformed variants are usage errors.
    @Test func variantRoundsAlternateWithTheShippedRules() throws {
        let (status, output) = try execute(ganflowExecutable, ["bench", "--model", "dcgan32", "--batch", "4", "--steps", "1", "--warmup", "0",
                                                               "--threads", "1", "--rounds", "2", "--profile",
                                                               "--variant", "gemm=never", "--variant", "swapped=always,phases=never"])
        #expect(status == 0, "\(output)")
        let lines = output.split(separator: "\n")
        let label = "gemm=never,swapped=always,phases=never"
        let rounds = lines.filter { $0.hasPrefix(#"{"framework": "ganflow", "model": "dcgan32""#) }
        #expect(rounds.map { $0.contains(#""variant": "shipped""#) } == [true, false, true, false], "\(output)")
        #expect(rounds.filter { $0.contains(#""variant": "\#(label)""#) }.count == 2, "\(output)")
        #expect(lines.contains { $0.hasPrefix("profile: dcgan32, batch 4") }, "\(output)")
        #expect(lines.contains { $0.hasPrefix("profile: dcgan32 with \(label), batch 4") }, "\(output)")
        // With the swapped weight gradient forced on, the variant's profile shows it.
        let variantProfile = lines.drop { !$0.hasPrefix("profile: dcgan32 with") }
        #expect(variantProfile.contains { $0.hasPrefix("conv.bwd_weights") && $0.contains("swapped") }, "\(output)")
        let summary = try #require(lines.last { $0.hasPrefix(#"{"model": "dcgan32", "variant": "\#(label)""#) }, "\(output)")
        let shipped = try #require(Self.number(after: #""shipped_median_ms":"#, in: summary))
        let varied = try #require(Self.number(after: #""variant_median_ms":"#, in: summary))
        let ratio = try #require(Self.number(after: #""ratio":"#, in: summary))
        #expect(abs(ratio - varied / shipped) <= 0.0005 + 0.01 * ratio, "\(summary)")
        let pairs = try #require(summary.range(of: #""pair_ratios": ["#).map { summary[$0.upperBound...].prefix { $0 != "]" } })
        let each = pairs.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        #expect(each.count == 2, "\(summary)")
        // The median of two pairs is their mean (each printed to 3 decimals).
        let pairMedian = try #require(Self.number(after: #""pair_median":"#, in: summary))
        #expect(abs(pairMedian - each.reduce(0, +) / 2) <= 0.0011, "\(summary)")

        for (variant, message) in [("phases", "--variant 'phases': expected PATH=MODE"),
                                   ("fast=never", "--variant 'fast=never': unknown kernel path 'fast'; one of phases, swapped, gemm")] {
            let (status, output) = try execute(ganflowExecutable, ["bench", "--variant", variant])
            #expect(status == 1)
            #expect(output.contains(message), "\(output)")
        }
        let (bothStatus, both) = try execute(ganflowExecutable, ["bench", "--variant", "gemm=never", "--torch", "python3"])
        #expect(bothStatus == 1)
        #expect(both.contains("--variant and --torch: choose one"), "\(both)")
    }

    /// Usage errors exit with status 1, like every other bad input, with ArgumentParser's message.
    @Test func unknownModelPrecisionAndFlagAreErrorsWithStatusOne() throws {
        let (status, output) = try execute(ganflowExecutable, ["bench", "--model", "nope", "--steps", "1"])
        #expect(status == 1)
        #expect(output.contains("unknown model 'nope'; one of mlp, dcgan32, dcgan64, stylegan2_32, progan32, msggan32"), "\(output)")
        let (pstatus, poutput) = try execute(ganflowExecutable, ["bench", "--precision", "fp16"])
        #expect(pstatus == 1)
        #expect(poutput.contains("--precision must be one of fp32, bf16"), "\(poutput)")
        let (fstatus, foutput) = try execute(ganflowExecutable, ["run", "pipelines/dcgan-fashion.json", "--no-such-flag"])
        #expect(fstatus == 1)
        #expect(foutput.contains("Error: Unknown option '--no-such-flag'"), "\(foutput)")
        #expect(foutput.contains("Usage: ganflow run"), "\(foutput)")
    }
}
