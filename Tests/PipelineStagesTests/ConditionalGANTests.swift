import Foundation
import GANFlowTestSupport
import NeuralNet
import PipelineGraph
import PipelineStages
import Testing
import TensorRuntime

/// Class-conditional generators and discriminators as stages: label wiring and its validation,
/// a few training steps, the class-aware outputs and metrics.
@Suite struct ConditionalGANTests {
    static let images = fixture("idx/t10k-256-images-idx3-ubyte.gz"), labels = fixture("idx/t10k-256-labels-idx1-ubyte.gz")
    static let data = #""data": { "type": "dataset.idx", "images": "\#(images)", "labels": "\#(labels)", "batch": 8, "size": 16, "fit": "resize" }"#
    static let noise = #""z": { "type": "noise.normal", "dim": 8, "batch": 8 }, "y": { "type": "noise.classes", "classes": 10, "batch": 8 }"#

    @Test func labelWiringProblemsNameTheirPath() {
        let g = #""type": "generator.dcgan", "input": "z.samples", "resolution": 16, "width": 4"#
        let d = #""type": "discriminator.dcgan", "width": 4, "inputs": { "real": "data.images", "fake": "G0.images" }"#
        let found = problems(stages: Self.data + ", " + Self.noise + #"""
            , "y32": { "type": "noise.classes", "classes": 10, "batch": 32 }
            , "yBad": { "type": "noise.classes", "classes": 10, "fixed": [1, 11] }
            , "G0": { \#(g), "labels": "y.labels", "conditioning": "cbn", "classes": 10 }
            , "G1": { \#(g), "conditioning": "cbn" }
            , "G2": { \#(g), "labels": "y.labels", "conditioning": "cbn", "classes": 12 }
            , "G3": { \#(g), "labels": "y.labels" }
            , "G4": { \#(g), "labels": "y.labels", "conditioning": "cbn", "classes": 10, "norm": "spectral" }
            , "G5": { \#(g), "labels": "y32.labels", "conditioning": "concat", "classes": 10 }
            , "G6": { \#(g), "conditioning": "concat", "classes": 10 }
            , "D1": { \#(d), "labels": { "real": "data.labels" }, "conditioning": "projection", "classes": 10 }
            , "D2": { \#(d), "labels": { "real": "data.labels", "fake": "y.labels" }, "conditioning": "projection", "classes": 8 }
            , "D3": { \#(d), "labels": { "real": "data.labels", "fake": "y.labels", "rael": "y.labels" }, "conditioning": "ac", "classes": 10 }
            , "D4": { \#(d), "labels": { "real": "data.labels", "fake": "y.labels" }, "conditioning": "cbn", "classes": 10 }
            , "grid": { "type": "sink.classgrid", "images": "G0.images", "labels": "y.labels", "classes": 9 }
            """#)
        #expect(found.sorted() == [
            "$.stages.D1.labels: input 'fake' has no class labels; add \"fake\": \"<stage>.labels\" to 'labels'",
            "$.stages.D2.labels.real: 'data.labels' gives labels of 10 classes, but 'classes' is 8",
            "$.stages.D3.labels.rael: no input 'rael' to label (did you mean 'real'?)",
            "$.stages.D4.conditioning: 'cbn' is not one of none, concat, projection, ac, projection+ac",
            "$.stages.G1.classes: conditioning 'cbn' needs the number of classes",
            "$.stages.G2.labels: 'y.labels' gives labels of 10 classes, but 'classes' is 12",
            "$.stages.G3.labels: labels are wired but 'conditioning' is none; set conditioning to one of concat, cbn",
            "$.stages.G4.conditioning: conditioning 'cbn' conditions the batch norms: it needs norm 'batch', found 'spectral'",
            "$.stages.G5.labels: expected class labels [8] for input 'input', found tensor [32]",
            "$.stages.G6.labels: conditioning 'concat' needs class labels: wire 'labels' to a noise.classes stage's 'labels'",
            "$.stages.grid.labels: 'y.labels' gives labels of 10 classes, but 'classes' is 9",
            "$.stages.yBad.fixed: class 11 is not one of 0...9 ('classes' is 10)",
        ])
    }

    /// StyleGAN2 offers stylegan2-ada-pytorch's conditioning only: G's label embedding and D's
    /// projection; the path-length penalty of a conditional G takes the latents' labels.
    @Test func styleGAN2ConditioningProblemsNameTheirPath() {
        let g = #""type": "generator.stylegan2", "input": "z.samples", "resolution": 16, "channelBase": 64, "channelMax": 8, "wDim": 8"#
        let d = #""type": "discriminator.stylegan2", "channelBase": 64, "channelMax": 8, "inputs": { "real": "data.images", "fake": "G.images" }"#
        let found = problems(stages: Self.data + ", " + Self.noise + #"""
            , "G": { \#(g), "labels": "y.labels", "conditioning": "concat", "classes": 10 }
            , "G1": { \#(g), "labels": "y.labels", "conditioning": "cbn", "classes": 10 }
            , "D": { \#(d), "labels": { "real": "data.labels", "fake": "y.labels" }, "conditioning": "ac", "classes": 10 }
            , "pl": { "type": "loss.pathlength", "generator": "G", "input": "z.samples" }
            , "pl1": { "type": "loss.pathlength", "generator": "G", "input": "z.samples", "labels": "data.images" }
            """#)
        #expect(found.sorted() == [
            "$.stages.D.conditioning: 'ac' is not one of none, projection",
            "$.stages.G1.conditioning: 'cbn' is not one of none, concat",
            "$.stages.pl.labels: generator 'G' is class-conditional (10 classes): wire 'labels' to the class labels of 'input', as the generator's own 'labels'",
            "$.stages.pl1.labels: expected class labels [8] for the latents, found tensor [8, 1, 16, 16]",
        ])
    }

    /// A gradient penalty on a class-conditional D scores the real images for their classes:
    /// `realLabels` is required (and refused for an unconditional D), and R1 and WGAN-GP train with it.
    @Test(arguments: ["r1", "gp"]) func penaltiesOnAConditionalCriticTakeTheRealLabels(_ penalty: String) throws {
        func stages(conditional: Bool, realLabels: String?) -> String {
            let d = conditional ? #", "labels": { "real": "data.labels", "fake": "y.labels" }, "conditioning": "projection", "classes": 10"# : ""
            return Self.data + ", " + Self.noise + #"""
                , "G": { "type": "generator.dcgan", "input": "z.samples", "labels": "y.labels", "conditioning": "cbn", "classes": 10, "resolution": 16, "width": 4 }
                , "D": { "type": "discriminator.dcgan", "inputs": { "real": "data.images", "fake": "G.images" }, "width": 4\#(d) }
                , "adv": { "type": "loss.hinge", "real": "D.real", "fake": "D.fake", "penalty": "\#(penalty)", "penaltyWeight": 1, "critic": "D",
                           "realImages": "data.images", "fakeImages": "G.images"\#(realLabels.map { #", "realLabels": "\#($0)""# } ?? "") }
                , "optG": { "type": "optimizer.adam", "minimize": "adv.generator", "parameters": "G" }
                , "optD": { "type": "optimizer.adam", "minimize": "adv.discriminator", "parameters": "D" }
                """#
        }
        #expect(problems(stages: stages(conditional: true, realLabels: nil)) == [
            "$.stages.adv.realLabels: the critic 'D' is class-conditional: penalty '\(penalty)' needs 'realLabels', the class labels of 'realImages' (e.g. \"data.labels\")",
        ])
        #expect(problems(stages: stages(conditional: false, realLabels: "data.labels")) == [
            "$.stages.adv.realLabels: the critic 'D' is not class-conditional; remove 'realLabels'",
        ])
        let dir = temporaryDirectory("conditional-\(penalty)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try pipeline(stages: stages(conditional: true, realLabels: "data.labels"), steps: 2)
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        let summary = try Runner(pipeline: p, options: options).run()
        #expect(summary.finalScalars["adv.penalty"].map { $0 > 0 && $0.isFinite } == true, "\(summary.finalScalars)")
    }

    /// The DCGAN pair conditioned every way trains a few steps; the outputs have their shapes, and
    /// the ac head's class logits feed a cross-entropy.
    @Test(arguments: [("cbn", "projection"), ("concat", "ac"), ("concat", "concat"), ("cbn", "projection+ac")])
    func dcganTrains(generator: String, discriminator: String) throws {
        var stages = Self.data + ", " + Self.noise + #"""
            , "G": { "type": "generator.dcgan", "input": "z.samples", "labels": "y.labels", "conditioning": "\#(generator)", "classes": 10, "resolution": 16, "width": 4 }
            , "D": { "type": "discriminator.dcgan", "inputs": { "real": "data.images", "fake": "G.images" }, "width": 4,
                     "labels": { "real": "data.labels", "fake": "y.labels" }, "conditioning": "\#(discriminator)", "classes": 10 }
            , "adv": { "type": "loss.hinge", "real": "D.real", "fake": "D.fake" }
            , "optG": { "type": "optimizer.adam", "minimize": "adv.generator", "parameters": "G" }
            """#
        let classLogits = discriminator.hasSuffix("ac")
        if classLogits {
            stages += #"""
                , "ce": { "type": "loss.crossentropy", "logits": "D.realClasses", "labels": "data.labels" }
                , "lossD": { "type": "loss.sum", "inputs": { "adv": "adv.discriminator", "ce": "ce.loss" }, "weights": { "ce": 0.5 } }
                , "optD": { "type": "optimizer.adam", "minimize": "lossD.loss", "parameters": "D" }
                """#
        } else {
            stages += #", "optD": { "type": "optimizer.adam", "minimize": "adv.discriminator", "parameters": "D" }"#
        }
        let dir = temporaryDirectory("conditional-\(generator)-\(discriminator)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try pipeline(stages: stages, steps: 2)
        #expect(p.nodes["G"]!.stage.outputs["images"] == .tensor([8, 1, 16, 16]))
        let dOut = p.nodes["D"]!.stage.outputs
        #expect(dOut["real"] == .tensor([8]))
        #expect(dOut["fakeClasses"] == (classLogits ? .tensor([8, 10]) : nil))
        let g = stage(p, "G", as: DCGANGeneratorStage.self)
        #expect(g.classCount == 10)
        let before = g.parameters.map { $0.1.scalars }
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        _ = try Runner(pipeline: p, options: options).run()
        #expect(zip(before, g.parameters.map { $0.1.scalars }).contains { $0 != $1 })
        // Samples of a class differ from those of another class for the same latents.
        var rng = PhiloxRandom(seed: 9)
        let z = Tensor(randomNormal: [8, 8], using: &rng)
        let a = try g.generate(z, labels: Tensor(repeating: 1, shape: [8]), movingAverage: false)
        let b = try g.generate(z, labels: Tensor(repeating: 7, shape: [8]), movingAverage: false)
        #expect(a.scalars != b.scalars)
        #expect(throws: TensorError.self) { _ = try g.generate(z) }
    }

    /// A sample evaluation makes the whole batch, even on rank 0 of a data-parallel run whose
    /// stages are built for a rank's share: its class grid has as many columns as one process's.
    @Test func theClassGridOfADataParallelRunHasTheColumnsOfTheWholeBatch() throws {
        let text = #"{ "name": "t", "seed": 1, "steps": 1, "stages": { "#
            + #""y": { "type": "noise.classes", "classes": 10, "batch": 20 }, "#
            + #""data": { "type": "dataset.idx", "images": "\#(Self.images)", "batch": 20, "size": 8, "fit": "resize" }, "#
            + #""grid": { "type": "sink.classgrid", "images": "data.images", "labels": "y.labels", "classes": 10 }, "#
            + #""idle": { "type": "test.idle" } }, "schedule": [{ "run": "idle" }] }"#
        let images = try Tensor(shape: [20, 1, 8, 8], scalars: (0..<1280).map { Float($0 % 255) / 127.5 - 1 })
        let labels = try Tensor(shape: [20], scalars: (0..<20).map { Float($0 % 10) })
        var grids: [Data] = []
        for communicator in [SingleProcessCommunicator(), ThreadedCommunicatorGroup(size: 2).ranks[0]] as [any Communicator] {
            let out = temporaryDirectory("classgrid-ranks")
            let p = try PipelineBuilder(registry: ganTestRegistry).build(try PipelineDocument.parse(text, file: "t.json"),
                                                                         outputDirectory: out, communicator: communicator)
            #expect(p.nodes["data"]!.stage.outputs["images"] == .tensor([20 / communicator.size, 1, 8, 8]))
            var e = Evaluation(outputs: ["written"], inputs: ["images": .tensor(images), "labels": .tensor(labels)],
                               step: 1, index: 0, mode: .sample, seed: 1, stageID: "grid")
            e.communicator = communicator
            _ = try p.nodes["grid"]!.stage.evaluate(e)
            try p.nodes["grid"]!.stage.finish()
            let path = out + "/classgrid/step-00000001.png"
            // Two images of each class a row: 2 + 2 * (8 + 2) wide, 10 rows high.
            #expect(try pngHeader(path) == [22, 102, 1, 8])
            grids.append(try Data(contentsOf: URL(fileURLWithPath: path)))
        }
        #expect(grids[0] == grids[1])
    }
}

/// The conditional pipelines shipped in pipelines/: two steps on the fixtures, then what users do
/// with the run: resume it, sample classes, export the weights.
@Suite struct ConditionalPipelineTests {
    static let files: [(name: String, losses: [String])] = [
        ("cdcgan-fashion", ["lossD.loss", "lossG.loss", "classReal.loss", "classFake.loss"]),
        ("acgan-fashion", ["lossD.loss", "lossG.loss", "classReal.loss"]),
        ("cgan-mlp-fashion", ["loss.discriminator", "loss.generator"]),
        ("stylegan2-cond-fashion", ["loss.discriminator", "loss.generator", "loss.penalty"]),
    ]

    @Test(arguments: files.map(\.name))
    func trainsResumesSamplesAndExports(_ name: String) throws {
        let losses = Self.files.first { $0.name == name }!.losses
        let labels = fixture("idx/t10k-256-labels-idx1-ubyte.gz")
        var overrides = ["data.labels=\(labels)", "y.batch=8"]
        let text = try String(contentsOfFile: PipelineFileTests.path(name), encoding: .utf8)
        if text.contains("metric.consistency") { overrides += ["consistency.every=1", "intrafid.every=1"] }
        let (dir, summary) = try PipelineFileTests.runOnFixtures(name, steps: 2, overrides: overrides, losses: losses)
        if text.contains("metric.consistency") {
            #expect(summary.finalScalars["consistency.accuracy"].map { (0...1).contains($0) } == true)
            #expect(summary.finalScalars["intrafid.distance"]?.isFinite == true)
        }
        #expect(FileManager.default.fileExists(atPath: dir + "/classgrid/step-00000002.png"))

        // Resume for one more step from the checkpoint of step 2.
        let idx = fixture("idx/t10k-256")
        let doc = try PipelineDocument.load(file: PipelineFileTests.path(name), overrides: overrides + [
            "data.batch=8", "z.batch=8", "data.images=\(idx)-images-idx3-ubyte.gz",
        ] + (text.contains("features.classifier")
            ? ["features.count=16", "test.images=\(idx)-images-idx3-ubyte.gz", "test.labels=\(idx)-labels-idx1-ubyte.gz"] : []))
        let p = try PipelineBuilder(registry: .standard).build(doc, outputDirectory: dir)
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        options.resume = true
        options.stepsOverride = 3
        let runner = Runner(pipeline: p, options: options)
        #expect(try runner.run().lastStep == 3)
        #expect(runner.resumedFrom != nil)

        let run = try TrainedRun(dir)
        let (_, g) = try run.generator(nil)
        let generator = g
        #expect(g.classCount == 10)
        let sampler = try GeneratorSampler(g, movingAverage: false)
        let grid = try sampler.classGrid(classes: [0, 3, 7], columns: 4, seed: 1)
        #expect(grid.shape.first == 12)
        var batches: [(Int, Int, Int)] = []
        try sampler.classBatches(classes: [2, 9], count: 5, seed: 1) { c, first, images in batches.append((c, first, images.shape[0])) }
        for c in [2, 9] {
            let mine = batches.filter { $0.0 == c }
            #expect(mine.map(\.2).reduce(0, +) == 5)
            #expect(mine.map(\.1) == Array(mine.map(\.2).reduce(into: [0]) { $0.append($0.last! + $1) }.dropLast()))
        }
        #expect(try sampler.samples(count: 3, seed: 1).shape.first == 3)
        // Chosen latents (interpolation, projection, --latent) take the class given, whatever their place.
        let dim = generator.latentShape.dropFirst().reduce(1, *)
        var rng = PhiloxRandom(seed: 9)
        let latents = Tensor(randomNormal: [2, dim], using: &rng)
        let three = try GeneratorSampler(g, movingAverage: false, chosenClass: 3), four = try GeneratorSampler(g, movingAverage: false, chosenClass: 4)
        let pair = try three.images(of: latents), second = try three.images(of: try latents.sliced(axis: 0, 1..<2).copy())
        #expect(GoldenFixture.difference(try pair.sliced(axis: 0, 1..<2).copy(), second) < 1e-5)
        #expect(GoldenFixture.difference(try four.images(of: try latents.sliced(axis: 0, 1..<2).copy()), second) > 1e-4)
        #expect { try GeneratorSampler(g, movingAverage: false, chosenClass: 10) } throws: {
            ($0 as? StageProblem)?.message == "class 10 is not one of the generator's classes 0...9"
        }
        #expect { try sampler.checkClasses([10]) } throws: {
            ($0 as? StageProblem)?.message == "class 10 is not one of the generator's classes 0...9"
        }
        #expect(try run.stateDict(stage: "G", ema: false).names.contains { $0.hasSuffix("gain.weight") || $0.hasSuffix("embed.weight") })
        if let critic = try? run.critic("D").stage {
            #expect(critic.classCount == 10)
        }
        // ONNX carries the class as a second graph input (`GeneratorONNXExportTests` decodes it).
        let model = try GeneratorONNXExport.export(g, ema: false, name: "G").model
        #expect(String(decoding: model, as: UTF8.self).contains("labels"))
    }
}

/// `ganflow sample --class` and `--classes` as a user types them, on a 1-step run of the
/// conditional MLP GAN.
@Suite struct ClassSamplingCommandLineTests {
    @Test func classesAreSampledAndBadClassesRefused() throws {
        let root = TestDirectories.make("cli-classes"), run = root + "/cgan"
        let idx = fixture("idx/t10k-256")
        let (trained, log) = try execute(ganflowExecutable, [
            "run", repositoryRoot + "/pipelines/cgan-mlp-fashion.json", "--steps", "1", "--out", run, "--threads", "1", "--no-tensorboard",
            "--set", "data.images=\(idx)-images-idx3-ubyte.gz", "--set", "data.labels=\(idx)-labels-idx1-ubyte.gz",
            "--set", "data.batch=8", "--set", "z.batch=8", "--set", "y.batch=8",
        ])
        #expect(trained == 0, "\(log)")
        let (one, oneOut) = try execute(ganflowExecutable, ["sample", run, "--class", "3", "--count", "5", "--out", root + "/three"])
        #expect(one == 0 && oneOut == "wrote 5 samples of class 3 from stage 'G' at step 1 to \(root)/three\n", "\(oneOut)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/three").sorted() == (0..<5).map { String(format: "sample-%05d.png", $0) })
        let (some, _) = try execute(ganflowExecutable, ["sample", run, "--classes", "0,9", "--count", "2", "--out", root + "/some"])
        #expect(some == 0)
        #expect(FileManager.default.fileExists(atPath: root + "/some/class-9/sample-00001.png"))
        let (grid, gridOut) = try execute(ganflowExecutable, ["sample", run, "--classes", "0,1,2", "--count", "4", "--grid", "--out", root + "/grid"])
        #expect(grid == 0 && gridOut.hasPrefix("wrote a class grid (rows: classes 0,1,2; 4 latents)"), "\(gridOut)")
        let (bad, badOut) = try execute(ganflowExecutable, ["sample", run, "--class", "12", "--out", root + "/bad"])
        #expect(bad == 1 && badOut.hasSuffix("stage 'G': class 12 is not one of the generator's classes 0...9\n"), "\(badOut)")
        // Interpolation and projection choose latents: their class is --class, which they need.
        let (walk, walkOut) = try execute(ganflowExecutable, ["interpolate", run, "--seeds", "1,2", "--frames", "3", "--out", root + "/walk"])
        #expect(walk == 1 && walkOut.hasSuffix("stage 'G' is class-conditional (10 classes): give the class of the latents with --class K\n"), "\(walkOut)")
        let (walk3, walk3Out) = try execute(ganflowExecutable, ["interpolate", run, "--seeds", "1,2", "--frames", "3", "--class", "3", "--out", root + "/walk"])
        #expect(walk3 == 0, "\(walk3Out)")
        #expect(FileManager.default.fileExists(atPath: root + "/walk/frame-0002.png"))
        let (projected, projectOut) = try execute(ganflowExecutable, ["project", run, "--image", root + "/three/sample-00000.png", "--class", "3",
                                                                      "--steps", "3", "--out", root + "/projection"])
        #expect(projected == 0, "\(projectOut)")
        let (back, backOut) = try execute(ganflowExecutable, ["sample", run, "--latent", root + "/projection/latent.safetensors", "--class", "3",
                                                              "--out", root + "/back"])
        #expect(back == 0, "\(backOut)")
        let (parse, parseOut) = try execute(ganflowExecutable, ["sample", run, "--classes", "1,x", "--out", root + "/bad"])
        #expect(parse != 0 && parseOut.contains("--classes must be class numbers separated by commas, such as 0,3,7; found '1,x'"), "\(parseOut)")
    }
}
