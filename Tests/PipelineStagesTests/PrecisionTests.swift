import GANFlowTestSupport
import Foundation
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

/// `"precision": "bf16"` and `--precision bf16` through pipelines and the ganflow binary.
@Suite struct PrecisionTests {
    /// With oneDNN capped at AVX2 (as on the AVX2-only EPYC), bf16 stops before the first step
    /// with the instruction set named; run and bench both, status 1.
    @Test func bf16FailsBeforeTheFirstStepWithoutBF16Kernels() throws {
        let dir = temporaryDirectory("precision-probe")
        let capped = ["ONEDNN_MAX_CPU_ISA": "AVX2"]
        let expected = "error: precision bf16: oneDNN has no bf16 kernels on this CPU (instruction set 'avx2'; "
            + "convolution: none, matmul: none); bf16 needs AVX512_BF16 (avx512_core_bf16) or AMX (avx512_core_amx): use precision fp32\n"
        let run = try execute(ganflowExecutable, ["run", repositoryRoot + "/pipelines/mlp-gan-fashion.json", "--precision", "bf16", "--steps", "1",
                                    "--out", dir, "--set", "data.images=\(SchedulerEquivalenceTests.images)"], environment: capped)
        #expect(run.0 == 1)
        #expect(run.1 == expected)
        #expect(!FileManager.default.fileExists(atPath: dir + "/metrics.jsonl"))
        let bench = try execute(ganflowExecutable, ["bench", "--model", "mlp", "--precision", "bf16", "--steps", "1"], environment: capped)
        #expect(bench.0 == 1)
        #expect(bench.1 == expected)
        // The pipeline key is checked the same way.
        let key = try execute(ganflowExecutable, ["run", repositoryRoot + "/pipelines/mlp-gan-fashion.json", "--set", "precision=bf16", "--steps", "1",
                                    "--out", dir, "--set", "data.images=\(SchedulerEquivalenceTests.images)"], environment: capped)
        #expect(key.0 == 1)
        #expect(key.1 == expected)
    }

    /// The scheduler's guarantee holds in bf16: serial and dispatch give bit-identical
    /// checkpoints and metrics; and the bf16 run differs from the fp32 one (it did run in bf16).
    @Test(.enabled(if: bf16Unavailable == nil, Comment(rawValue: bf16Unavailable ?? "")))
    func serialAndDispatchAreBitIdenticalInBF16() throws {
        let c = SchedulerEquivalenceTests.cases[0]
        let bf16 = c.overrides + ["precision=bf16"]
        let serial = try SchedulerEquivalenceTests.run(c.pipeline, steps: c.steps, overrides: bf16, scheduler: .serial)
        let dispatch = try SchedulerEquivalenceTests.run(c.pipeline, steps: c.steps, overrides: bf16, scheduler: .dispatch)
        #expect(serial.metrics.count == c.steps)
        #expect(serial.metrics == dispatch.metrics)
        #expect(serial.checkpoint == dispatch.checkpoint, "\(c.pipeline) in bf16: the checkpoints of step \(c.steps) differ")
        let fp32 = try SchedulerEquivalenceTests.run(c.pipeline, steps: c.steps, overrides: c.overrides, scheduler: .serial)
        #expect(fp32.checkpoint != serial.checkpoint)
    }
}
