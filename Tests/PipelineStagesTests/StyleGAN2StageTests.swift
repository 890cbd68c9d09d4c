import Foundation
import GANFlowTestSupport
import NeuralNet
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

@Suite struct StyleGAN2StageTests {
    /// A tiny 8x8 StyleGAN2 with lazy R1 and path length, on the test image stage.
    static func stages(pathLength: String = #""every": 2"#, augment: Bool = false) -> String {
        let dInputs = augment ? #"{ "real": "aug.real", "fake": "aug.fake" }"# : #"{ "real": "data.images", "fake": "G.images" }"#
        return """
        "data": { "type": "test.images", "batch": 4, "size": 8 },
        "z": { "type": "noise.normal", "dim": 6, "batch": 4 },
        "G": { "type": "generator.stylegan2", "input": "z.samples", "resolution": 8, "wDim": 5, "mappingLayers": 2,
               "channelBase": 32, "channelMax": 4, "mixing": 0.9, "ema": 0.9, "emaRampUp": 0.05 },
        \(augment ? #""aug": { "type": "augment.diff", "inputs": { "real": "data.images", "fake": "G.images" }, "adaptive": true, "probability": 0.5 },"# : "")
        "D": { "type": "discriminator.stylegan2", "inputs": \(dInputs), "channelBase": 32, "channelMax": 4, "groupSize": 2 },
        "loss": { "type": "loss.nonsaturating", "real": "D.real", "fake": "D.fake", "penalty": "r1", "penaltyWeight": 0.1,
                  "penaltyEvery": 2, "critic": "D", "realImages": "\(augment ? "aug.real" : "data.images")" },
        "pl": { "type": "loss.pathlength", "generator": "G", "input": "z.samples", \(pathLength) },
        "lossG": { "type": "loss.sum", "inputs": { "adversarial": "loss.generator", "pathLength": "pl.generator" } },
        "optD": { "type": "optimizer.adam", "minimize": "loss.discriminator", "parameters": "D", "lr": 0.002, "betas": [0, 0.99] },
        "optG": { "type": "optimizer.adam", "minimize": "lossG.loss", "parameters": "G", "lr": 0.002, "betas": [0, 0.99] }
        """
    }

    @Test func trainsAndRegularizesLazily() throws {
        let p = try pipeline(stages: Self.stages(), steps: 4)
        let g = stage(p, "G", as: StyleGAN2GeneratorStage.self)
        #expect(g.outputs["images"] == .tensor([4, 1, 8, 8]))
        #expect(Set(g.parameters.map(\.0)).contains("mapping.fc1.weight"))
        let before = g.parameters.map { $0.1.copy().scalars }
        let wAverage = g.generator.mapping.wAverage!.scalars
        var options = Runner.Options(runDirectory: temporaryDirectory("stylegan2-run"))
        options.quiet = true
        let summary = try Runner(pipeline: p, options: options).run()
        #expect(summary.lastStep == 4)
        #expect(zip(before, g.parameters.map { $0.1.scalars }).contains { $0 != $1 })
        #expect(g.generator.mapping.wAverage!.scalars != wAverage)
        let pl = stage(p, "pl", as: PathLengthLossStage.self)
        // Evaluated in 4 G steps, computed on the 1st and 3rd: the running mean moved twice.
        #expect(pl.clock == 4)
        #expect(pl.regularizer.mean > 0)
        #expect(g.core.ema!.updates == 4)
    }

    /// At weight 0 the path-length stage keeps its clock but never runs the extra generator pass:
    /// no length measured, the running mean untouched, and its term 0.
    @Test func pathLengthWeightZeroSkipsThePenalty() throws {
        let p = try pipeline(stages: Self.stages(pathLength: #""every": 2, "weight": 0"#), steps: 3)
        var options = Runner.Options(runDirectory: temporaryDirectory("stylegan2-no-pl"))
        options.quiet = true
        #expect(try Runner(pipeline: p, options: options).run().lastStep == 3)
        let pl = stage(p, "pl", as: PathLengthLossStage.self)
        #expect(pl.clock == 3)
        #expect(pl.regularizer.mean == 0 && pl.lastLength == 0)
    }

    @Test func worksWithAdaptiveAugmentation() throws {
        let p = try pipeline(stages: Self.stages(augment: true) + #", "ada": { "type": "augment.ada", "logits": "D.real", "augment": "aug", "interval": 1, "speed": 40 }"#,
                             schedule: #"[{ "run": ["optD", "ada"] }, { "run": "optG" }]"#, steps: 2)
        var options = Runner.Options(runDirectory: temporaryDirectory("stylegan2-ada"))
        options.quiet = true
        #expect(try Runner(pipeline: p, options: options).run().lastStep == 2)
    }

    @Test func samplesTruncateTowardsTheMeanW() throws {
        let p = try pipeline(stages: Self.stages(), steps: 1)
        let g = stage(p, "G", as: StyleGAN2GeneratorStage.self)
        var rng = PhiloxRandom(seed: 3)
        try g.generator.mapping.wAverage!.assign(Tensor(randomNormal: [5], using: &rng))
        try g.core.ema!.copy()
        let sampler = try GeneratorSampler(g, movingAverage: true, truncation: 0)
        #expect(sampler.latentTruncation == 1)
        // psi 0: every latent gives the image of the mean w.
        let images = try sampler.samples(count: 3, seed: 1)
        let first = try images.sliced(axis: 0, 0..<1).copy().scalars
        for i in 1..<3 { #expect(maxAbsDifference(try images.sliced(axis: 0, i..<(i + 1)).copy().scalars, first) < 1e-5) }
        let untruncated = try GeneratorSampler(g, movingAverage: true).samples(count: 3, seed: 1)
        #expect(maxAbsDifference(try untruncated.sliced(axis: 0, 1..<2).copy().scalars, first) > 1e-3)
    }

    /// Random samples and the metrics draw fresh noise for every image (stylegan2-ada-pytorch's
    /// metrics); chosen latents and `sampleForward` keep each layer's constant noise.
    @Test func randomSamplesDrawFreshNoiseAndChosenLatentsTheConstantNoise() throws {
        let p = try pipeline(stages: Self.stages(), steps: 1)
        let g = stage(p, "G", as: StyleGAN2GeneratorStage.self)
        // Noise strengths start at 0 (no effect): give the noise a visible weight.
        let strengths = g.parameters.filter { $0.0.hasSuffix("noise_strength") }
        #expect(strengths.count == 3)
        for (_, t) in strengths { try t.assign(Tensor(shape: [], scalars: [0.5])) }
        try g.core.ema!.copy()
        // The same latent in every row: constant noise gives one image, fresh noise four.
        var rng = PhiloxRandom(seed: 2)
        let one = Tensor(randomNormal: [1, 6], using: &rng)
        let z = try Tensor.concat([Tensor](repeating: one, count: 4), axis: 0)
        func rowsDiffer(_ images: Tensor) throws -> Bool {
            let first = try images.sliced(axis: 0, 0..<1).scalars
            return try (1..<4).allSatisfy { maxAbsDifference(try images.sliced(axis: 0, $0..<($0 + 1)).scalars, first) > 1e-4 }
        }
        let constant = try withoutGradients { try g.sampleForward(z, movingAverage: true) }
        #expect(try !rowsDiffer(constant))
        var noise = PhiloxRandom(seed: 7)
        let fresh = try withoutGradients { try g.sampleForward(z, movingAverage: true, truncation: 1, noise: &noise) }
        #expect(try rowsDiffer(fresh))
        // Sampling: random noise by default, reproducible from the seed; const as sampleForward.
        let sampler = try GeneratorSampler(g, movingAverage: true)
        #expect(sampler.noise == .random)
        let a = try sampler.samples(count: 6, seed: 4), b = try sampler.samples(count: 6, seed: 4)
        #expect(a.scalars == b.scalars)
        let constSampler = try GeneratorSampler(g, movingAverage: true, noise: .const)
        let c = try constSampler.samples(count: 4, seed: 4)
        #expect(maxAbsDifference(try a.sliced(axis: 0, 0..<4).scalars, c.scalars) > 1e-4)
        var latents = constSampler.randomLatents(seed: 4)
        #expect(c.scalars == (try withoutGradients { try g.sampleForward(latents.next(), movingAverage: true) }).scalars)
        // Chosen latents keep the constant noise whatever the sampler's setting.
        #expect(try sampler.images(of: z).scalars == constant.scalars)
    }

    /// The metrics' samples get fresh noise from their own stream, not the constant noise.
    @Test func metricsSampleWithFreshNoise() throws {
        let dir = temporaryDirectory("stylegan2-features")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeClassifierWeights(to: dir + "/c.safetensors")
        let stages = Self.stages() + """
            ,
            "test": { "type": "dataset.idx", "images": "\(fixture("idx/t10k-256-images-idx3-ubyte.gz"))", "batch": 8, "shuffle": false },
            "features": { "type": "features.classifier", "weights": "\(dir)/c.safetensors", "generator": "G", "reference": "test",
                          "count": 8, "referenceCount": 20 }
            """
        let p = try pipeline(stages: stages, steps: 1)
        let g = stage(p, "G", as: StyleGAN2GeneratorStage.self)
        for (name, t) in g.parameters where name.hasSuffix("noise_strength") { try t.assign(Tensor(shape: [], scalars: [0.5])) }
        try g.core.ema!.copy()
        let features = stage(p, "features", as: ClassifierFeaturesStage.self)
        var latents = PhiloxRandom(seed: features.sets.latentSeed, stream: stableHash("features/features"))
        var noise = PhiloxRandom(seed: features.sets.latentSeed, stream: stableHash("features noise/features"))
        let z = Tensor(randomNormal: g.latentShape, using: &latents)
        let fresh = try withoutGradients { try g.sampleForward(z, movingAverage: true, truncation: 1, noise: &noise) }
        let constant = try g.generate(z)
        let fake = try features.sets.fakeFeatures().features
        let expected = try features.extractor(FeatureSets.asSaved(fresh)).features
        #expect(Array(fake.scalars.prefix(expected.count)) == expected.scalars)
        #expect(Array(fake.scalars.prefix(expected.count)) != (try features.extractor(FeatureSets.asSaved(constant)).features).scalars)
    }

    @Test func styleMixingGridTakesCoarseStylesFromRowsAndFineFromColumns() throws {
        let p = try pipeline(stages: Self.stages(), steps: 1)
        let g = stage(p, "G", as: StyleGAN2GeneratorStage.self)
        let sampler = try GeneratorSampler(g, movingAverage: true)
        let images = try StyleMixingGrid.images(sampler, count: 3, crossover: 2, seed: 5)
        #expect(images.shape == [16, 1, 8, 8])
        func tile(_ i: Int) throws -> [Float] { try images.sliced(axis: 0, i..<(i + 1)).copy().scalars }
        #expect(try tile(0).allSatisfy { $0 == -1 })
        var rows = sampler.randomLatents(seed: 5), columns = sampler.randomLatents(seed: 6)
        let z = try rows.next().sliced(axis: 0, 0..<1).copy(), fine = try columns.next().sliced(axis: 0, 0..<1).copy()
        // The first column and row are the sources themselves; cell (0, 0) mixes them.
        #expect(try maxAbsDifference(tile(4), try g.sampleForward(z, movingAverage: true).scalars) < 1e-5)
        #expect(try maxAbsDifference(tile(1), try g.sampleForward(fine, movingAverage: true).scalars) < 1e-5)
        let expected = try g.mixedImages(coarse: z, fine: fine, crossover: 2, movingAverage: true, truncation: 1)
        #expect(try maxAbsDifference(tile(5), expected.scalars) < 1e-5)
        #expect(throws: PipelineErrors.self) { try StyleMixingGrid.images(sampler, count: 3, crossover: 0, seed: 5) }
    }

    @Test func checkpointsTheRegularizerAndTheMeanW() throws {
        let dir = temporaryDirectory("stylegan2-resume")
        var options = Runner.Options(runDirectory: dir)
        options.quiet = true
        let p = try pipeline(stages: Self.stages(), steps: 2)
        _ = try Runner(pipeline: p, options: options).run()
        let state = try stage(p, "pl", as: PathLengthLossStage.self).checkpointState()
        let gState = try stage(p, "G", as: StyleGAN2GeneratorStage.self).checkpointState()
        #expect(gState.tensors["mapping.w_avg"] != nil && gState.tensors["ema.mapping.w_avg"] != nil)
        let q = try pipeline(stages: Self.stages(), steps: 2)
        let pl = stage(q, "pl", as: PathLengthLossStage.self)
        try pl.restore(state)
        #expect(pl.clock == 2 && pl.regularizer.mean == stage(p, "pl", as: PathLengthLossStage.self).regularizer.mean)
    }

    @Test func stateDictRoundTrips() throws {
        let p = try pipeline(stages: Self.stages(), steps: 1)
        let g = stage(p, "G", as: StyleGAN2GeneratorStage.self)
        let archive = try g.stateDict(ema: false)
        #expect(archive.names.contains("synthesis.b8.conv0.noise_strength"))
        #expect(try archive.tensor("synthesis.b8.conv0.noise_strength").shape == [])
        let q = try pipeline(stages: Self.stages(), steps: 1, seed: 9)
        let h = stage(q, "G", as: StyleGAN2GeneratorStage.self)
        try h.loadStateDict(archive)
        for ((_, a), (_, b)) in zip(g.parameters, h.parameters) { #expect(a.scalars == b.scalars) }
    }

    @Test func invalidConfigurationsNameTheKey() {
        #expect(problems(stages: Self.stages().replacingOccurrences(of: #""resolution": 8, "wDim""#, with: #""resolution": 12, "wDim""#))
                .contains("$.stages.G.resolution: StyleGAN2: resolution 12 is not a power of two of at least 4"))
        #expect(problems(stages: Self.stages().replacingOccurrences(of: #""generator": "G""#, with: #""generator": "D""#))
                == ["$.stages.pl.generator: stage 'D' is not a generator.stylegan2"])
        #expect(problems(stages: Self.stages().replacingOccurrences(of: #""ema": 0.9, "#, with: ""))
                == ["$.stages.G.emaRampUp: a ramp-up needs a moving average: set 'ema'"])
        #expect(problems(stages: Self.stages().replacingOccurrences(of: #""groupSize": 2"#, with: #""groupSize": 3"#))
                == ["$.stages.D.inputs.real: StyleGAN2 discriminator: batch size 4 is not a multiple of the minibatch-stddev group size 3"])
        #expect(problems(stages: Self.stages().replacingOccurrences(of: #""channelMax": 4, "mixing""#, with: #""channelMax": 4, "channelMin": 8, "mixing""#))
                == ["$.stages.G.channelMin: 8 is more than channelMax (4)"])
    }
}

@Suite struct EMARampUpTests {
    @Test func rampUpStartsAsACopyAndReachesTheDecay() throws {
        var rng = PhiloxRandom(seed: 1)
        let source = try Linear(2, 2, rng: &rng), average = try Linear(2, 2, rng: &rng)
        let ema = try ExponentialMovingAverage(of: source, into: average, decay: 0.99)
        ema.rampUp = 0.05
        #expect(ema.currentDecay == 0)
        ema.updates = 100
        // Half-life min(68.97, 5) steps: 0.5^(1/5).
        #expect(abs(ema.currentDecay - 0.870_550_563) < 1e-6)
        ema.updates = 100_000
        #expect(abs(ema.currentDecay - 0.99) < 1e-9)
        ema.rampUp = nil
        ema.updates = 0
        #expect(ema.currentDecay == 0.99)
    }

    /// Each update sets average = decay * average + (1 - decay) * source, element by element,
    /// with the same bits whether its loop runs on one thread or is split over three (a layer
    /// large enough to be split: 512 x 512 weights).
    @Test func anUpdateIsTheFormulaOnEveryThreadCount() throws {
        func updated(threads: Int) throws -> (average: [Float], expected: [Float]) {
            var rng = PhiloxRandom(seed: 3)
            let source = try Linear(512, 512, rng: &rng), average = try Linear(512, 512, rng: &rng)
            let ema = try ExponentialMovingAverage(of: source, into: average, decay: 0.9)
            let first = average.namedParameters.map { $0.1.scalars }
            #expect(largestDifference(first.flatMap { $0 }, source.namedParameters.flatMap { $0.1.scalars }) == 0, "the average starts as a copy")
            for (_, p) in source.namedParameters { try p.assign(Tensor(randomNormal: p.shape, using: &rng)) }
            try ParallelLoop.withThreads(threads) { try ema.update() }
            let expected = zip(first, source.namedParameters.map { $0.1.scalars }).flatMap { a, s in
                zip(a, s).map { Float(0.9) * $0 + Float(1 - 0.9) * $1 }
            }
            return (average.namedParameters.flatMap { $0.1.scalars }, expected)
        }
        // Compared through largestDifference: a failing #expect on 262k-element arrays would
        // spend minutes describing them.
        let one = try updated(threads: 1), three = try updated(threads: 3)
        #expect(one.average.count == 512 * 512 + 512)
        #expect(largestDifference(one.average, one.expected) == 0)
        #expect(largestDifference(three.average, one.average) == 0)
    }
}
