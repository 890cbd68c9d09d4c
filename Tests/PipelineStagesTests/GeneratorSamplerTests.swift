import Foundation
import GANFlowTestSupport
import ImageIO
import PipelineGraph
import PipelineStages
import Testing
import TensorRuntime

@Suite struct GeneratorSamplerTests {
    /// A batch-norm DCGAN generator (batch 4, latents of 16, 16x16) and a ProGAN one (no batch norm).
    static let dcgan = #""z": { "type": "noise.normal", "batch": 4, "dim": 16 }, "G": { "type": "generator.dcgan", "input": "z.samples", "resolution": 16, "width": 8 }, "idle": { "type": "test.idle" }"#
    static let progan = #""z": { "type": "noise.normal", "batch": 4, "dim": 16 }, "G": { "type": "generator.progan", "input": "z.samples", "target": 8, "fmapBase": 64, "fmapMax": 16 }, "idle": { "type": "test.idle" }"#

    func generator(_ stages: String) throws -> any GeneratorStage {
        let p = try pipeline(stages: stages, schedule: #"[{ "run": "idle" }]"#)
        return stage(p, "G", as: (any GeneratorStage).self)
    }

    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "" } catch let e as PipelineErrors { return e.description } catch { return "\(error)" }
    }

    @Test func writtenSamplesAreTheBatchedImagesInOrder() throws {
        let g = try generator(Self.dcgan)
        let sampler = try GeneratorSampler(g, movingAverage: true)
        #expect(sampler.batchDependent)
        let dir = temporaryDirectory("sampler-png")
        let stats = try sampler.writePNGs(count: 10, seed: 7, to: dir)
        #expect(stats.images == 10)
        let expected = try sampler.samples(count: 10, seed: 7)
        #expect(expected.shape == [10, 1, 16, 16])
        for i in [0, 3, 9] {
            let read = try PNG.read((dir as NSString).appendingPathComponent(String(format: "sample-%05d.png", i)))
            let want = try Image(expected, index: i).pixels.map { (min(max(($0 + 1) / 2, 0), 1) * 255).rounded() / 255 }
            #expect(read.pixels == want)
        }
        #expect(!FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent("sample-00010.png")))
    }

    /// Work and memory per image stay flat as the count grows 8-fold: one forward pass per batch,
    /// no more rows generated than batches hold, and never more than two batches held at once.
    @Test func workAndMemoryPerImageDoNotGrowWithTheCount() throws {
        let sampler = try GeneratorSampler(try generator(Self.dcgan), movingAverage: true)
        var seen: [GeneratorSampler.Statistics] = []
        for count in [12, 96] {
            let dir = temporaryDirectory("sampler-count")
            let s = try sampler.writePNGs(count: count, seed: 1, to: dir, workers: 2, inFlight: 2)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).count == count)
            #expect(s.images == count)
            #expect(s.forwardPasses == count / 4)
            #expect(s.rowsGenerated == count)
            #expect(s.peakResidentBatches >= 1 && s.peakResidentBatches <= 2)
            seen.append(s)
            try? FileManager.default.removeItem(atPath: dir)
        }
        #expect(seen[0].peakResidentBatches <= 2 && seen[1].peakResidentBatches <= 2)
    }

    @Test func anImageOfAChosenLatentDependsOnThatLatentAlone() throws {
        for stages in [Self.dcgan, Self.progan] {
            let sampler = try GeneratorSampler(try generator(stages), movingAverage: true)
            var rng = PhiloxRandom(seed: 3)
            let a = Tensor(randomNormal: [1, 16], using: &rng), b = Tensor(randomNormal: [2, 16], using: &rng)
            let c = Tensor(randomNormal: [5, 16], using: &rng)
            let withB = try sampler.images(of: try Tensor.concat([a, b])), withC = try sampler.images(of: try Tensor.concat([a, c]))
            #expect(withB.shape[0] == 3 && withC.shape[0] == 6)
            let first = try withB.sliced(axis: 0, 0..<1).scalars, again = try withC.sliced(axis: 0, 0..<1).scalars
            #expect(maxAbsDifference(first, again) < 1e-6)
        }
    }

    @Test func truncationMovesLatentsTowardsTheMean() throws {
        let g = try generator(Self.dcgan)
        let full = try GeneratorSampler(g, movingAverage: true, truncation: 1)
        let half = try GeneratorSampler(g, movingAverage: true, truncation: 0.5)
        let none = try GeneratorSampler(g, movingAverage: true, truncation: 0)
        #expect(maxAbsDifference(try half.latent(seed: 4).scalars, try full.latent(seed: 4).scalars.map { $0 * 0.5 }) == 0)
        // psi 0: every latent is the mean, so every image is the mean latent's image.
        let mean = try none.samples(count: 5, seed: 2)
        let first = try mean.sliced(axis: 0, 0..<1).scalars
        for i in 1..<5 { #expect(maxAbsDifference(try mean.sliced(axis: 0, i..<(i + 1)).scalars, first) < 1e-6) }
        #expect(maxAbsDifference(first, try full.images(of: Tensor(zeros: [1, 16])).scalars) < 1e-6)
        // psi 1 is plain sampling; psi 0.5 differs from it (batch norm does not undo it).
        #expect(try full.samples(count: 4, seed: 2).scalars == g.samples(count: 4, seed: 2).scalars)
        #expect(maxAbsDifference(try half.samples(count: 4, seed: 2).scalars, try full.samples(count: 4, seed: 2).scalars) > 1e-3)
    }

    @Test func seedListsAndTruncationAreChecked() throws {
        let seeds: [UInt64] = try LatentPath.parseSeeds("1,2,3"), ranges: [UInt64] = try LatentPath.parseSeeds("0, 5-8,42")
        #expect(seeds == [1, 2, 3])
        #expect(ranges == [0, 5, 6, 7, 8, 42])
        let hint = "give non-negative integers and ranges separated by commas, e.g. 1,2,3 or 0,5-8"
        #expect(message { _ = try LatentPath.parseSeeds("1;2") } == "--seeds: '1;2' is not a seed or a range; \(hint)")
        #expect(message { _ = try LatentPath.parseSeeds("1,,2") } == "--seeds: '' is not a seed or a range; \(hint)")
        #expect(message { _ = try LatentPath.parseSeeds("8-5") } == "--seeds: '8-5' is not a seed or a range; \(hint)")
        #expect(message { _ = try LatentPath.parseSeeds("-3") } == "--seeds: '-3' is not a seed or a range; \(hint)")
        #expect(message { try LatentPath.checkTruncation(0.7) } == "")
        #expect(message { try LatentPath.checkTruncation(1.5) }
                == "--truncation: 1.5 is not between 0 and 1 (1 keeps latents as drawn, 0 gives the mean latent)")
        #expect(message { try LatentPath.checkTruncation(.nan) }
                == "--truncation: nan is not between 0 and 1 (1 keeps latents as drawn, 0 gives the mean latent)")
    }

    @Test func interpolationPassesThroughEveryKey() throws {
        var rng = PhiloxRandom(seed: 9)
        let keys = Tensor(randomNormal: [3, 16], using: &rng)
        for slerp in [false, true] {
            let path = try LatentPath.interpolate(keys, frames: 5, slerp: slerp)
            #expect(path.shape == [10, 16])
            let rows = (0..<10).map { try! path.sliced(axis: 0, $0..<($0 + 1)).scalars }
            let k = (0..<3).map { try! keys.sliced(axis: 0, $0..<($0 + 1)).scalars }
            #expect(maxAbsDifference(rows[0], k[0]) < 1e-5 && maxAbsDifference(rows[4], k[1]) < 1e-5)
            #expect(maxAbsDifference(rows[5], k[1]) < 1e-5 && maxAbsDifference(rows[9], k[2]) < 1e-5)
            // Spherical frames keep the norm between the keys' norms; straight lines shrink it midway.
            let norm = { (v: [Float]) in v.reduce(0) { $0 + $1 * $1 }.squareRoot() }
            let (n0, n1, mid) = (norm(k[0]), norm(k[1]), norm(rows[2]))
            if slerp { #expect(abs(mid - (n0 + n1) / 2) < 1e-3) } else { #expect(mid < (n0 + n1) / 2) }
        }
    }

    @Test func latentFilesRoundTripAndBadOnesAreNamed() throws {
        let dir = temporaryDirectory("latents")
        let file = (dir as NSString).appendingPathComponent("z.safetensors")
        var rng = PhiloxRandom(seed: 1)
        let z = Tensor(randomNormal: [3, 16], using: &rng)
        try LatentPath.writeLatents(z, to: file)
        #expect(try LatentPath.readLatents(file, dimension: 16).scalars == z.scalars)
        #expect(message { _ = try LatentPath.readLatents(file, dimension: 100) }
                == "\(file): tensor 'z' has shape [3, 16]; the generator takes latents [N, 100]")
        var other = SafeTensorsArchive(metadata: [:])
        other.set("w", z)
        try other.write(to: file)
        #expect(message { _ = try LatentPath.readLatents(file, dimension: 16) } == "\(file): no tensor 'z' (latents [N, 16]); it has w")
        // A file of w latents says so, and reads as w.
        #expect(try LatentPath.space(ofFile: file) == .w)
        #expect(try LatentPath.readLatents(file, dimension: 16, space: .w).scalars == z.scalars)
        #expect(message { _ = try LatentPath.readLatents(file, dimension: 8, space: .w) }
                == "\(file): tensor 'w' has shape [3, 16]; the generator takes w latents [N, 8]")
        try LatentPath.writeLatents(z, to: file, space: .w)
        #expect(try SafeTensorsArchive(contentsOf: file).names == ["w"])
    }

    /// StyleGAN2's w space: a seed's w is the mapping of its z, and its image in w is its image in
    /// z, bit for bit; a generator without a mapping network has no w space.
    @Test func wLatentsAreTheMappingOfTheirSeedsLatents() throws {
        let g = try generator(#""z": { "type": "noise.normal", "batch": 4, "dim": 6 }, "G": { "type": "generator.stylegan2", "input": "z.samples", "resolution": 8, "wDim": 5, "mappingLayers": 2, "channelBase": 32, "channelMax": 4 }, "idle": { "type": "test.idle" }"#)
        let inZ = try GeneratorSampler(g, movingAverage: false), inW = try GeneratorSampler(g, movingAverage: false, space: .w)
        #expect(inZ.latentDimension == 6 && inW.latentDimension == 5)
        for seed: UInt64 in [0, 3] {
            let w = try inW.latent(seed: seed)
            #expect(w.shape == [1, 5])
            #expect(try (g as! any WSpaceGeneratorStage).mapping(try inZ.latent(seed: seed), movingAverage: false).scalars == w.scalars)
            #expect(try inW.images(of: w).scalars == inZ.images(of: try inZ.latent(seed: seed)).scalars)
        }
        #expect { _ = try GeneratorSampler(try generator(Self.dcgan), movingAverage: false, space: .w) } throws: {
            ($0 as? StageProblem)?.message == "this generator has no w space (only a StyleGAN2 generator's mapping network makes one): its latents are z"
        }
    }

    @Test func aRunWithoutAGeneratorIsNamed() throws {
        let dir = temporaryDirectory("no-generator")
        try #"{ "name": "t", "steps": 1, "stages": { "idle": { "type": "test.idle" } }, "schedule": [{ "run": "idle" }] }"#
            .write(toFile: (dir as NSString).appendingPathComponent("pipeline.json"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: (dir as NSString).appendingPathComponent("checkpoints"), withIntermediateDirectories: true)
        var checkpoint = SafeTensorsArchive(metadata: ["ganflow.step": "1"])
        checkpoint.set("idle.x", Tensor(zeros: [1]))
        try checkpoint.write(to: (dir as NSString).appendingPathComponent("checkpoints/step-00000001.safetensors"))
        let pipelineFile = (dir as NSString).appendingPathComponent("pipeline.json")
        #expect(message { _ = try TrainedRun(dir).generator(nil, registry: ganTestRegistry) } == "\(pipelineFile): the pipeline has no generator stage")
        #expect(message { _ = try TrainedRun(dir).generator("idle", registry: ganTestRegistry) } == "\(pipelineFile): stage 'idle' is not a generator")
    }

    /// Projection finds an image the generator made again: from four other seeds' latents, 40
    /// L-BFGS iterations bring the mean pixel error under 1% of the range (from 24-38%).
    @Test func projectionFindsAGeneratedImageAgain() throws {
        for stages in [Self.dcgan, Self.progan] {
            let sampler = try GeneratorSampler(try generator(stages), movingAverage: true)
            let target = try sampler.images(of: sampler.latent(seed: 5))
            let projection = try Projection(sampler: sampler)
            let result = try projection.run(target: target, steps: 40, seed: 0)
            let start = zip(try sampler.images(of: sampler.latent(seed: 0)).scalars, target.scalars).reduce(Float(0)) { $0 + abs($1.0 - $1.1) } / Float(target.count) / 2
            #expect(result.losses.last! < result.losses.first! / 100, "\(result.losses)")
            #expect(result.pixelError < 0.01, "from \(start)")
            #expect(result.image.scalars == (try sampler.images(of: result.latent)).scalars)
        }
    }

    @Test func projectionTargetsAreFittedAsDatasetsFitTheirImages() throws {
        let dir = temporaryDirectory("project-target")
        let gray = (dir as NSString).appendingPathComponent("gray12.png"), rgb = (dir as NSString).appendingPathComponent("rgb16.png")
        var ramp = Image(width: 12, height: 12, channels: 1, repeating: 0)
        for i in 0..<ramp.pixels.count { ramp.pixels[i] = Float(i % 251) / 255 }
        try PNG.write(ramp, to: gray)
        try PNG.write(Image(width: 16, height: 16, channels: 3, repeating: 0.5), to: rgb)
        // Padded onto black, as a dataset stage with "fit": "pad" serves it.
        let padded = try Projection.target(gray, shape: [1, 16, 16], fit: .pad).image
        let expected = try ramp.padded(toWidth: 16, height: 16).tensor(range: .symmetric)
        #expect(padded.shape == [1, 1, 16, 16] && padded.scalars == expected.scalars)
        #expect(padded.scalars[0] == -1 && padded.scalars[2 * 16 + 2] == 2 * ramp.pixels[0] - 1)
        // Resized (the default) and converted to the generator's channels.
        let resized = try Projection.target(gray, shape: [3, 16, 16]).image
        #expect(resized.shape == [1, 3, 16, 16])
        #expect(resized.scalars == (try ramp.resized(width: 16, height: 16).converted(toChannels: 3).tensor(range: .symmetric)).scalars)
        let luma = try Projection.target(rgb, shape: [1, 16, 16], fit: .exact).image
        #expect(luma.shape == [1, 1, 16, 16] && luma.scalars.allSatisfy { abs($0 - (2 * Float(128) / 255 - 1)) < 1e-6 })
        // What cannot be fitted is named, with the file and where the fit came from.
        #expect(message { _ = try Projection.target(gray, shape: [1, 8, 8], fit: .pad, fitSource: "as the run's stage 'data'") }
                == "\(gray): fit pad (as the run's stage 'data'): cannot pad 12x12 images to the smaller 8x8 (use --fit \"resize\" or a crop)")
        #expect(message { _ = try Projection.target(gray, shape: [1, 16, 16], fit: .centerCrop) }
                == "\(gray): fit centerCrop (--fit): cannot crop 16x16 from 12x12 images (use --fit \"resize\" or \"pad\")")
        #expect(message { _ = try Projection.target(gray, shape: [1, 16, 16], fit: .exact) }
                == "\(gray): the image is 12x12 with 1 channel; the generator makes 16x16 images with 1 channel (--fit exact takes images of that size only)")
        #expect(message { _ = try Projection.target(gray, shape: [1, 16, 16], pixelLimit: 100) }.contains("more than the limit of 100"))
        #expect(message { _ = try Projection.target(dir + "/none.png", shape: [1, 16, 16]) }.hasPrefix(dir + "/none.png: "))
        // A photo in another format: a JPEG, turned upright by its EXIF orientation as datasets read it.
        let jpeg = fixture("images/chelsea-exif6.jpg")
        let photo = try Projection.target(jpeg, shape: [3, 16, 16]).image
        let upright = try ImageFile.read(path: jpeg, options: ImageDecodeOptions(atLeast: (16, 16)))
        let stored = try ImageFile.header(path: jpeg)
        #expect(upright.height > upright.width && stored.height > upright.height)
        let side = 16.0 / Double(upright.width)
        let tall = try upright.resized(width: 16, height: Int((Double(upright.height) * side).rounded())).centerCropped(width: 16, height: 16)
        #expect(largestDifference(photo.scalars, tall.tensor(range: .symmetric).scalars) < 1e-6)
    }
}
