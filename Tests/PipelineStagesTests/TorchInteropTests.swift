import Foundation
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

/// The exported weights checked by the real peer: PyTorch loads each model stage's `state_dict`
/// with `load_state_dict(strict=True)` into the nn.Sequential its pipeline describes and must
/// compute GANFlow's outputs (Scripts/torch_load_check.py); the generator's ONNX export
/// (`ganflow export --format onnx`) passes onnx.checker and onnxruntime computes its images
/// (Scripts/onnx_check.py). Runs in `make test-interop`, which builds the venv with the CPU torch,
/// onnx and onnxruntime; in CI a missing Python fails the test.
@Suite struct TorchInteropTests {
    /// Shipped pipelines on the fixture images, two steps each so that weights, batch-norm
    /// statistics and spectral-norm vectors have moved from their initial values.
    static let cases: [(pipeline: String, overrides: [String])] = [
        ("dcgan-fashion.json", ["G.width=16", "D.width=16", "features.count=32"]),
        ("dcgan28-notebook.json", []),
        ("mlp-gan-fashion.json", []),
        ("hinge-sn-fashion.json", ["G.width=16", "D.width=16"]),
        // Trained at its target resolution (where the export is compared), 16x16 here.
        ("progan-fashion.json", ["grow.start=16", "grow.target=16", "G.target=16", "data.size=16", "data.fit=resize", "grid.every=2",
                                  #"grow.batchByResolution={"16": 64}"#, "features.count=32"]),
        ("msggan-fashion.json", ["G.target=16", "data.size=16", "data.fit=resize", "data.pyramid=4", "features.count=32"]),
    ]

    /// The data stages read the fixture images (the test set too, where the pipeline has one).
    static func fixtureOverrides(_ doc: PipelineDocument) -> [String] {
        let images = fixture("idx/t10k-256-images-idx3-ubyte.gz"), labels = fixture("idx/t10k-256-labels-idx1-ubyte.gz")
        return ["data.images=\(images)"] + (doc.stages["test"] == nil ? [] : ["test.images=\(images)", "test.labels=\(labels)"])
    }

    /// The shipped pipeline `file` with the overrides `overrides` gives for it, trained `steps`
    /// steps quietly in a new temporary directory named from `prefix`: that directory and the pipeline.
    static func train(_ file: String, in prefix: String, steps: Int, overrides: (PipelineDocument) -> [String]) throws -> (String, Pipeline) {
        let dir = temporaryDirectory(prefix + file)
        let path = repositoryRoot + "/pipelines/" + file
        let doc = try PipelineDocument.load(file: path, overrides: overrides(try PipelineDocument.load(file: path)), lengthGiven: true)
        let pipeline = try PipelineBuilder(registry: .standard).build(doc, outputDirectory: dir)
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        options.stepsOverride = steps
        _ = try Runner(pipeline: pipeline, options: options).run()
        return (dir, pipeline)
    }

    @Test(.enabled(if: interopPython != nil || runningInCI, Comment(rawValue: interopPythonMissing)),
          arguments: cases.map(\.pipeline))
    func pyTorchAndONNXRuntimeComputeWhatTheExportedModelsCompute(_ file: String) throws {
        let python = try requireInteropPython()
        let overrides = Self.cases.first { $0.pipeline == file }!.overrides
        let (dir, pipeline) = try Self.train(file, in: "torch-", steps: 2) { Self.fixtureOverrides($0) + overrides }

        let g = try #require(pipeline.nodes["G"]?.stage as? any GeneratorStage)
        let d = try #require(pipeline.nodes["D"]?.stage as? any ModelStage)
        var rng = PhiloxRandom(seed: 5, stream: 1)
        let z = Tensor(randomNormal: g.latentShape, using: &rng)
        let images = try g.generate(z)
        var generatorProbe = SafeTensorsArchive(metadata: ["format": "pt"])
        generatorProbe.set("z", z)
        generatorProbe.set("images", images)
        var discriminatorProbe = SafeTensorsArchive(metadata: ["format": "pt"])
        discriminatorProbe.set("x", images)
        switch d {
        case let critic as any CriticStage:
            discriminatorProbe.set("logits", try critic.critic(images))
        case let critic as any PyramidCriticStage:
            // MSG-GAN's D on the image and its 2x2-average pyramid, coarsest first.
            var pyramid = [images]
            while pyramid[0].shape[2] > 4 { pyramid.insert(try pyramid[0].downsampleArea(factor: 2), at: 0) }
            discriminatorProbe.set("logits", try critic.critic(pyramid: pyramid))
        default:
            Issue.record("\(file): D is no critic")
        }
        try g.stateDict(ema: g.hasMovingAverage).write(to: dir + "/G.safetensors")
        try generatorProbe.write(to: dir + "/G-probe.safetensors")
        try d.stateDict(ema: false).write(to: dir + "/D.safetensors")
        try discriminatorProbe.write(to: dir + "/D-probe.safetensors")

        let (status, output) = try execute(python, [repositoryRoot + "/Scripts/torch_load_check.py", dir,
                                                    "--stage", "G", "--stage", "D", "--given", dir])
        #expect(status == 0, "\(file): \(output)")
        let lines = output.split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(lines.count == 2 && lines.allSatisfy { $0.contains(#""strict_load": true"#) }, "\(file): \(output)")
        for line in lines { print("TorchInteropTests: \(file): \(line)") }

        // The generator as ONNX, through the command (with its moving average where it keeps
        // one): the largest difference from GANFlow's images on the export's probe latents must
        // stay within onnx_check.py's tolerance (1e-5).
        let (onnx, onnxOutput) = try execute(python, [repositoryRoot + "/Scripts/onnx_check.py", dir, "--ganflow", ganflowExecutable]
                                                     + (g.hasMovingAverage ? ["--ema"] : []))
        #expect(onnx == 0 && onnxOutput.contains(#""checker": "ok""#), "\(file): \(onnxOutput)")
        print("TorchInteropTests: \(file): \(onnxOutput.split(separator: "\n").last { $0.hasPrefix("{") } ?? "")")

        // The control, once: D's last weights changed by 1% must fail the comparison.
        guard file == Self.cases[0].pipeline else { return }
        var changed = try SafeTensorsArchive(contentsOf: dir + "/D.safetensors")
        let name = try #require(changed.names.last { $0.hasSuffix("weight") })
        changed.set(name, try changed.tensor(name) * 1.01)
        try changed.write(to: dir + "/D.safetensors")
        let (refused, refusal) = try execute(python, [repositoryRoot + "/Scripts/torch_load_check.py", dir, "--stage", "D", "--given", dir])
        #expect(refused == 1, "\(refusal)")
    }

    /// The generators without an nn.Sequential twin as ONNX, through the command: onnx.checker
    /// passes and onnxruntime computes the images of GANFlow's sampling within onnx_check.py's
    /// tolerance (1e-5 times the images' scale), from the weights and, where the stage keeps one,
    /// from their moving average, and with a truncation of 0.7 built in, after three steps so
    /// that biases, noise strengths, class embeddings and the mean w have moved from their
    /// initial values. StyleGAN2 (each layer's
    /// constant noise) gray at 32x32 and RGB at 64x64 (narrowed to 32 channels to stay quick), and
    /// the class-conditional generators, whose graphs take each row's class as a second input
    /// (conditional batch norm, and class embeddings joined to the latent of a DCGAN, an MLP and
    /// StyleGAN2's mapping network).
    @Test(.enabled(if: interopPython != nil || runningInCI, Comment(rawValue: interopPythonMissing)),
          arguments: ["stylegan2-fashion.json", "stylegan2-rgb64.json", "stylegan2-cond-fashion.json", "cdcgan-fashion.json", "acgan-fashion.json",
                      "cgan-mlp-fashion.json"])
    func generatorsWithoutASequentialTwinAsONNX(_ file: String) throws {
        let python = try requireInteropPython()
        // The Fashion-MNIST pipelines read the fixture IDX files; the RGB one reads the fixture photos already.
        let labels = fixture("idx/t10k-256-labels-idx1-ubyte.gz")
        let (dir, pipeline) = try Self.train(file, in: "onnx-", steps: 3) { shipped in
            file == "stylegan2-rgb64.json" ? ["G.channelMax=32", "D.channelMax=32"]
                : Self.fixtureOverrides(shipped) + ["features.count=32"] + (file == "stylegan2-fashion.json" ? [] : ["data.labels=\(labels)"])
        }
        let g = try #require(pipeline.nodes["G"]?.stage as? any GeneratorStage)
        #expect(["stylegan2-fashion.json", "stylegan2-rgb64.json"].contains(file) == (g.classCount == nil))
        // The moving average, where kept, also with a truncation built in (in w for StyleGAN2).
        for (ema, psi) in g.hasMovingAverage ? [(false, "1"), (true, "1"), (true, "0.7")] : [(false, "1"), (false, "0.7")] {
            let (status, output) = try execute(python, [repositoryRoot + "/Scripts/onnx_check.py", dir, "--ganflow", ganflowExecutable,
                                                        "--truncation", psi] + (ema ? ["--ema"] : []))
            #expect(status == 0 && output.contains(#""checker": "ok""#), "\(file): \(output)")
            print("TorchInteropTests: \(file): \(output.split(separator: "\n").last { $0.hasPrefix("{") } ?? "")")
        }
    }

    /// `ganflow bench --torch PYTHON` runs the PyTorch reference shipped in the project
    /// (Scripts/bench/torch_reference.py), from any directory.
    @Test(.enabled(if: interopPython != nil || runningInCI, Comment(rawValue: interopPythonMissing)))
    func benchRunsTheShippedPyTorchReferenceFromAnotherDirectory() throws {
        let python = try requireInteropPython()
        let (status, output) = try execute(ganflowExecutable, ["bench", "--model", "mlp", "--torch", python, "--rounds", "1",
                                                               "--steps", "2", "--warmup", "1", "--threads", "1"],
                                           directory: temporaryDirectory("bench-elsewhere"))
        #expect(status == 0, "\(output)")
        let summary = try #require(output.split(separator: "\n").last { $0.hasPrefix(#"{"model": "mlp", "ganflow_median_ms""#) }, "\(output)")
        #expect(summary.contains(#""torch_median_ms": "#) && summary.contains(#""ratio": "#), "\(summary)")
    }
}
