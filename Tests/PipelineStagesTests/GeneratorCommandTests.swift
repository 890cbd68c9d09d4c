import Foundation
import ImageIO
@testable import PipelineStages
import Testing
import TensorRuntime

/// The README's commands on a trained generator, every option through the binary as a user types
/// it: `sample` (seed, grid, truncation, raw weights, latents, style mixing), `interpolate`,
/// `project` and `export --ema`, on a 2-step run of the shipped `stylegan2-fashion.json` (narrowed,
/// on the fixture images; StyleGAN2 has a moving average, truncation in W and style mixing).
@Suite struct GeneratorCommandTests {
    static let images = fixture("idx/t10k-256-images-idx3-ubyte.gz")

    /// The trained run's directory and the training output (trained once for the suite).
    static let trained: (dir: String, status: Int32, output: String) = {
        let dir = temporaryDirectory("generator-commands") + "/run"
        let arguments = ["run", repositoryRoot + "/pipelines/stylegan2-fashion.json", "--steps", "2", "--out", dir, "--threads", "1",
                         "--no-tensorboard", "--set", "data.images=\(images)", "--set", "test.images=\(images)",
                         "--set", "test.labels=\(fixture("idx/t10k-256-labels-idx1-ubyte.gz"))", "--set", "features.count=32",
                         "--set", "G.channelMax=8", "--set", "D.channelMax=8", "--set", "G.mappingLayers=2",
                         // An average that differs from the weights after 2 steps (no ramp-up).
                         "--set", "G.ema=0.5", "--set", "G.emaRampUp=null"]
        let (status, output) = (try? execute(ganflowExecutable, arguments)) ?? (-1, "could not start \(ganflowExecutable)")
        return (dir, status, output)
    }()

    /// The trained run, or a failure naming why there is none.
    static func run() throws -> String {
        try #require(trained.status == 0, "training failed:\n\(trained.output)")
        return trained.dir
    }

    /// Runs `ganflow arguments...`, expecting status 0; returns the output.
    @discardableResult
    static func ganflow(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let (status, output) = try execute(ganflowExecutable, arguments)
        #expect(status == 0, "ganflow \(arguments.joined(separator: " ")):\n\(output)", sourceLocation: sourceLocation)
        return output
    }

    static func bytes(_ path: String) -> Data? { try? Data(contentsOf: URL(fileURLWithPath: path)) }

    static func size(_ png: String) throws -> [Int] {
        let image = try PNG.read(png)
        return [image.width, image.height]
    }

    static func files(_ dir: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() }

    @Test func sampleSeedGridTruncationRawWeightsAndStyleMixing() throws {
        let run = try Self.run(), out = temporaryDirectory("sample-options")
        // --seed: the same seed gives the same images, whatever the count; another seed others.
        let said = try Self.ganflow(["sample", run, "--count", "3", "--seed", "1", "--out", out + "/one"])
        #expect(said == "wrote 3 samples from stage 'G' (moving average) at step 2 to \(out)/one\n")
        try Self.ganflow(["sample", run, "--count", "1", "--seed", "1", "--out", out + "/first"])
        try Self.ganflow(["sample", run, "--count", "1", "--seed", "2", "--out", out + "/two"])
        #expect(Self.files(out + "/one") == ["sample-00000.png", "sample-00001.png", "sample-00002.png"])
        let first = Self.bytes(out + "/one/sample-00000.png")
        #expect(first != nil && first == Self.bytes(out + "/first/sample-00000.png"))
        #expect(first != Self.bytes(out + "/two/sample-00000.png"))
        #expect(Self.bytes(out + "/one/sample-00000.png") != Self.bytes(out + "/one/sample-00001.png"))

        // --raw: the weights themselves, not their moving average.
        let raw = try Self.ganflow(["sample", run, "--count", "1", "--seed", "1", "--raw", "--out", out + "/raw"])
        #expect(raw.contains("stage 'G' (weights, not their moving average) at step 2"), "\(raw)")
        #expect(Self.bytes(out + "/raw/sample-00000.png") != first)

        // --truncation 0: every latent moved all the way to the mean w, so with the constant noise
        // every image is the same, and with fresh noise (the default) they differ by their noise.
        let t = try Self.ganflow(["sample", run, "--count", "3", "--seed", "1", "--truncation", "0", "--noise", "const", "--out", out + "/t0"])
        #expect(t.contains("at step 2, truncation 0.0 to"), "\(t)")
        let truncated = Self.files(out + "/t0").map { Self.bytes(out + "/t0/" + $0) }
        #expect(truncated.count == 3 && Set(truncated).count == 1)
        try Self.ganflow(["sample", run, "--count", "3", "--seed", "1", "--truncation", "0", "--out", out + "/t0-noise"])
        let noisy = Self.files(out + "/t0-noise").map { Self.bytes(out + "/t0-noise/" + $0) }
        #expect(noisy.count == 3 && Set(noisy).count == 3)
        try Self.ganflow(["sample", run, "--count", "1", "--seed", "1", "--truncation", "0.5", "--out", out + "/t05"])
        let half = Self.bytes(out + "/t05/sample-00000.png")
        #expect(half != first && half != truncated.first)

        // --grid: one image, 2x2 of 32x32 with 2-pixel borders.
        try Self.ganflow(["sample", run, "--count", "4", "--grid", "--out", out + "/grid"])
        #expect(Self.files(out + "/grid") == ["grid.png"])
        #expect(try Self.size(out + "/grid/grid.png") == [70, 70])

        // --mix K: a (count + 1) x (count + 1) grid, sources in the first row and column.
        let mix = try Self.ganflow(["sample", run, "--mix", "2", "--count", "3", "--out", out + "/mix"])
        #expect(mix.contains("wrote a style-mixing grid of 3x3 images (crossover 2)"), "\(mix)")
        #expect(try Self.size(out + "/mix/mix.png") == [4 * 32 + 5 * 2, 4 * 32 + 5 * 2])

        // Fewer samples into a folder of more would leave the others to be scored with them: refused,
        // and the folder kept as it was. As many or more overwrite them.
        let before = Self.files(out + "/one").map { Self.bytes(out + "/one/" + $0) }
        let (fewer, fewerOutput) = try execute(ganflowExecutable, ["sample", run, "--count", "1", "--seed", "2", "--out", out + "/one"])
        #expect(fewer == 1 && fewerOutput == "error: \(out)/one: holds 2 samples from an earlier call beyond the 1 this one writes (sample-00001.png to sample-00002.png), which a score of the folder would mix in: give another --out, or remove them\n", "\(fewerOutput)")
        #expect(Self.files(out + "/one").map { Self.bytes(out + "/one/" + $0) } == before)
        try Self.ganflow(["sample", run, "--count", "3", "--seed", "2", "--out", out + "/one"])
        #expect(Self.bytes(out + "/one/sample-00000.png") == Self.bytes(out + "/two/sample-00000.png"))

        let (bad, badOutput) = try execute(ganflowExecutable, ["sample", run, "--truncation", "1.5", "--out", out + "/bad"])
        #expect(bad == 1 && badOutput.hasPrefix("error: "), "\(badOutput)")
    }

    /// On a terminal (util-linux's `script` gives the command one), `sample` and `score` draw a
    /// progress bar on standard error, redrawn in place and ended before the summary; `--quiet`
    /// leaves it out. Off a terminal they stay silent (the exact outputs above).
    @Test func sampleAndScoreDrawProgressBarsOnATerminal() throws {
        let run = try Self.run(), out = temporaryDirectory("sample-progress")
        func onTerminal(_ arguments: [String]) throws -> String {
            let command = ([ganflowExecutable] + arguments).map { "'\($0)'" }.joined(separator: " ")
            let (status, output) = try execute("/usr/bin/script", ["-qec", command, "/dev/null"])
            #expect(status == 0, "\(command):\n\(output)")
            return output
        }
        let full = "[" + String(repeating: "#", count: 30) + "]"
        let sampled = try onTerminal(["sample", run, "--count", "5", "--out", out + "/s"])
        #expect(sampled.contains("\r\(full) 5/5 images\r\nwrote 5 samples from stage 'G'"), "\(sampled)")
        let quiet = try onTerminal(["sample", run, "--count", "5", "--out", out + "/q", "--quiet"])
        #expect(!quiet.contains(" images") && quiet.contains("wrote 5 samples"), "\(quiet)")
        #expect(Self.files(out + "/s").count == 5 && Self.files(out + "/q").count == 5)
        // score: one bar per set, named by its path, 2 images per chunk.
        let scored = try onTerminal(["score", out + "/s", "--reference", Self.images, "--chunk", "2"])
        #expect(scored.contains("\r\(out)/s [" + String(repeating: "#", count: 12) + String(repeating: ".", count: 18) + "] 2/5 images"), "\(scored)")
        #expect(scored.contains("\r\(out)/s \(full) 5/5 images\r\n"), "\(scored)")
        #expect(scored.contains("\r\(Self.images) \(full) 256/256 images\r\n5 images from \(out)/s against 256 from"), "\(scored)")
    }

    @Test func interpolateBetweenSeedsThroughSeedListsAndLatents() throws {
        let run = try Self.run(), out = temporaryDirectory("interpolate-options")
        try Self.ganflow(["sample", run, "--count", "1", "--seed", "1", "--noise", "const", "--out", out + "/seed1"])
        try Self.ganflow(["sample", run, "--count", "1", "--seed", "2", "--noise", "const", "--out", out + "/seed2"])

        // --from --to --frames: the ends are the seeds' own images (a seed's latent is the first
        // one `sample --seed` draws, and a frame depends on its latent alone: constant noise).
        let line = try Self.ganflow(["interpolate", run, "--from", "1", "--to", "2", "--frames", "4", "--out", out + "/a"])
        #expect(line == "wrote 4 frames (1 segment of 4, linear) from stage 'G' (moving average) at step 2 to \(out)/a: frame-*.png, strip.png, animation.png\n")
        #expect(Self.files(out + "/a") == ["animation.png", "frame-0000.png", "frame-0001.png", "frame-0002.png", "frame-0003.png", "strip.png"])
        #expect(Self.bytes(out + "/a/frame-0000.png") == Self.bytes(out + "/seed1/sample-00000.png"))
        #expect(Self.bytes(out + "/a/frame-0003.png") == Self.bytes(out + "/seed2/sample-00000.png"))
        #expect(Self.bytes(out + "/a/frame-0001.png") != Self.bytes(out + "/a/frame-0000.png"))
        #expect(try Self.size(out + "/a/strip.png") == [4 * 32 + 5 * 2, 32 + 2 * 2])
        #expect(Self.animationFrames(out + "/a/animation.png") == 4)

        // --seeds with a range, --slerp, --truncation: 3 keys, 2 segments of 3 sharing a joint.
        let slerp = try Self.ganflow(["interpolate", run, "--seeds", "1,3-4", "--frames", "3", "--slerp", "--truncation", "0.7", "--out", out + "/b"])
        #expect(slerp.hasPrefix("wrote 5 frames (2 segments of 3, spherical) from stage 'G' (moving average) at step 2, truncation 0.7 to"), "\(slerp)")
        #expect(Self.files(out + "/b").filter { $0.hasPrefix("frame-") }.count == 5)
        #expect(Self.animationFrames(out + "/b/animation.png") == 5)
        try Self.ganflow(["interpolate", run, "--seeds", "1,3-4", "--frames", "3", "--truncation", "0.7", "--out", out + "/c"])
        #expect(Self.bytes(out + "/b/frame-0001.png") != Self.bytes(out + "/c/frame-0001.png"), "spherical and linear paths differ between the ends")
        #expect(Self.bytes(out + "/b/frame-0000.png") == Self.bytes(out + "/c/frame-0000.png"))
        // A shorter walk into the folder of a longer one would leave its last frames: refused.
        let (shorter, shorterOutput) = try execute(ganflowExecutable, ["interpolate", run, "--from", "1", "--to", "2", "--frames", "4", "--out", out + "/b"])
        #expect(shorter == 1 && shorterOutput == "error: \(out)/b: holds 1 frame from an earlier call beyond the 4 this one writes (frame-0004.png), which would be taken for this walk's: give another --out, or remove them\n", "\(shorterOutput)")

        // --latent: the latents of a file, in order.
        let latents = out + "/z.safetensors"
        try LatentPath.writeLatents(try Tensor(shape: [2, 128], scalars: (0..<256).map { Float(($0 % 7) - 3) / 3 }), to: latents)
        let fromFile = try Self.ganflow(["interpolate", run, "--latent", latents, "--frames", "2", "--out", out + "/d"])
        #expect(fromFile.hasPrefix("wrote 2 frames (1 segment of 2, linear)"), "\(fromFile)")
        try Self.ganflow(["sample", run, "--latent", latents, "--out", out + "/e"])
        #expect(Self.bytes(out + "/d/frame-0001.png") == Self.bytes(out + "/e/sample-00001.png"))

        let (bad, badOutput) = try execute(ganflowExecutable, ["interpolate", run, "--from", "1", "--out", out + "/bad"])
        #expect(bad == 1 && badOutput.hasPrefix("Error: --from and --to go together\n"), "\(badOutput)")
        // A file of one latent: the error names the file.
        let single = out + "/one.safetensors"
        try LatentPath.writeLatents(try Tensor(shape: [1, 128], scalars: [Float](repeating: 0.5, count: 128)), to: single)
        let (one, oneOutput) = try execute(ganflowExecutable, ["interpolate", run, "--latent", single, "--out", out + "/one"])
        #expect(one == 1 && oneOutput.contains(single) && oneOutput.contains("needs at least two latents, the file holds 1"), "\(oneOutput)")
    }

    /// The frame count an animated PNG declares (its acTL chunk).
    static func animationFrames(_ path: String) -> Int? {
        guard let data = bytes(path), let at = data.firstRange(of: Data("acTL".utf8)) else { return nil }
        return data[at.upperBound..<(at.upperBound + 4)].reduce(0) { $0 << 8 | Int($1) }
    }

    @Test(arguments: ["adam", "lbfgs"])
    func projectFindsALatentThatSampleReproduces(_ method: String) throws {
        let run = try Self.run(), out = temporaryDirectory("project-\(method)")
        try Self.ganflow(["sample", run, "--count", "3", "--seed", "1", "--out", out + "/samples"])
        let target = out + "/samples/sample-00002.png"
        let said = try Self.ganflow(["project", run, "--image", target, "--steps", "10", "--method", method, "--out", out + "/p"])
        // StyleGAN2 is searched in its w space by default.
        #expect(said.contains("projected \(target) with stage 'G' (moving average) at step 2 in w in 10 steps"), "\(said)")
        #expect(try SafeTensorsArchive(contentsOf: out + "/p/latent.safetensors").names == ["w"])
        #expect(Self.files(out + "/p") == ["latent.safetensors", "loss.svg", "losses.csv", "reconstruction.png", "side-by-side.png", "target.png"])
        let losses = try String(contentsOfFile: out + "/p/losses.csv", encoding: .utf8).split(separator: "\n").dropFirst()
            .compactMap { $0.split(separator: ",").last.flatMap { Double($0) } }
        #expect(losses.count == 11 && losses.last! < losses.first!, "\(losses)")
        // The latent file, generated by `sample --latent`, gives the reconstruction, byte for byte.
        try Self.ganflow(["sample", run, "--latent", out + "/p/latent.safetensors", "--out", out + "/again"])
        #expect(Self.bytes(out + "/again/sample-00000.png") == Self.bytes(out + "/p/reconstruction.png"))
    }

    /// A user's image of another size and format is prepared as the run's data stage prepared the
    /// training images (stylegan2-fashion.json pads 28 to 32), or as --fit says; what cannot be
    /// fitted is refused with the file, the fit and where it came from.
    @Test func projectFitsImagesAsTheRunsDatasetStage() throws {
        let run = try Self.run(), out = temporaryDirectory("project-fit")
        let trouser = fixture("fashion-mnist/Trouser/0002.png")
        let said = try Self.ganflow(["project", run, "--image", trouser, "--steps", "2", "--starts", "1", "--out", out + "/pad"])
        #expect(said.contains("fitted \(trouser) (28x28, 1 channel) to 32x32 with 1 channel: pad (as the run's stage 'data'); see target.png"), "\(said)")
        let original = try PNG.read(trouser), target = try PNG.read(out + "/pad/target.png")
        #expect(target.pixels == (try original.padded(toWidth: 32, height: 32)).pixels)

        let photo = fixture("images/chelsea-baseline.jpg")
        let (refused, refusal) = try execute(ganflowExecutable, ["project", run, "--image", photo, "--steps", "2", "--out", out + "/bad"])
        #expect(refused == 1 && refusal.contains("error: \(photo): fit pad (as the run's stage 'data'): cannot pad "), "\(refusal)")
        #expect(refusal.contains("to the smaller 32x32 (use --fit \"resize\" or a crop)"), "\(refusal)")
        #expect(!FileManager.default.fileExists(atPath: out + "/bad"))
        let resized = try Self.ganflow(["project", run, "--image", photo, "--fit", "resize", "--steps", "2", "--starts", "1", "--out", out + "/photo"])
        #expect(resized.contains("to 32x32 with 1 channel: resize (--fit); see target.png"), "\(resized)")
        #expect(try Self.size(out + "/photo/target.png") == [32, 32] && (try PNG.read(out + "/photo/target.png")).channels == 1)

        let (unknown, unknownOutput) = try execute(ganflowExecutable, ["project", run, "--image", photo, "--fit", "squash", "--out", out + "/bad"])
        #expect(unknown == 1 && unknownOutput.contains("squash"), "\(unknownOutput)")
    }

    @Test func wLatentsProjectInterpolateAndSample() throws {
        let run = try Self.run(), out = temporaryDirectory("w-space")
        try Self.ganflow(["sample", run, "--count", "1", "--seed", "1", "--noise", "const", "--out", out + "/seed1"])
        try Self.ganflow(["sample", run, "--count", "1", "--seed", "2", "--noise", "const", "--out", out + "/seed2"])
        // Seeds mapped to w: the ends are the seeds' own images, the frames between differ from z's.
        let line = try Self.ganflow(["interpolate", run, "--from", "1", "--to", "2", "--frames", "4", "--space", "w", "--out", out + "/w"])
        #expect(line.hasPrefix("wrote 4 frames (1 segment of 4, linear in w) from stage 'G' (moving average) at step 2 to"), "\(line)")
        #expect(Self.bytes(out + "/w/frame-0000.png") == Self.bytes(out + "/seed1/sample-00000.png"))
        #expect(Self.bytes(out + "/w/frame-0003.png") == Self.bytes(out + "/seed2/sample-00000.png"))
        try Self.ganflow(["interpolate", run, "--from", "1", "--to", "2", "--frames", "4", "--out", out + "/z"])
        #expect(Self.bytes(out + "/w/frame-0001.png") != Self.bytes(out + "/z/frame-0001.png"))

        // --space z searches z and writes 'z'; a 'w' file walks in w and refuses --space z and --slerp.
        let target = out + "/seed1/sample-00000.png"
        try Self.ganflow(["project", run, "--image", target, "--steps", "4", "--space", "z", "--out", out + "/pz"])
        #expect(try SafeTensorsArchive(contentsOf: out + "/pz/latent.safetensors").names == ["z"])
        let ws = out + "/two-w.safetensors"
        try LatentPath.writeLatents(try Tensor(shape: [2, 128], scalars: (0..<256).map { Float(($0 % 5) - 2) / 2 }), to: ws, space: .w)
        let walked = try Self.ganflow(["interpolate", run, "--latent", ws, "--frames", "3", "--out", out + "/file"])
        #expect(walked.hasPrefix("wrote 3 frames (1 segment of 3, linear in w)"), "\(walked)")
        try Self.ganflow(["sample", run, "--latent", ws, "--out", out + "/file-samples"])
        #expect(Self.bytes(out + "/file/frame-0002.png") == Self.bytes(out + "/file-samples/sample-00001.png"))
        let (mismatch, mismatchOutput) = try execute(ganflowExecutable, ["interpolate", run, "--latent", ws, "--space", "z", "--out", out + "/bad"])
        #expect(mismatch == 1 && mismatchOutput.contains("error: \(ws): holds latents in w (tensor 'w'), not in z as --space asks"), "\(mismatchOutput)")
        let (mixed, mixedOutput) = try execute(ganflowExecutable, ["sample", run, "--latent", ws, "--mix", "2", "--out", out + "/bad"])
        #expect(mixed == 1 && mixedOutput.hasPrefix("Error: --mix draws its own latents; it cannot be used with --latent"), "\(mixedOutput)")
        let (slerp, slerpOutput) = try execute(ganflowExecutable, ["interpolate", run, "--latent", ws, "--slerp", "--out", out + "/bad"])
        #expect(slerp == 1 && slerpOutput.contains("error: \(ws): holds w latents, which are walked along straight lines (leave out --slerp)"), "\(slerpOutput)")
    }

    @Test func exportTheMovingAverageOrTheWeights() throws {
        let run = try Self.run(), out = temporaryDirectory("export-ema")
        let ema = try Self.ganflow(["export", run, "--stage", "G", "--ema", "--out", out + "/ema.safetensors"])
        #expect(ema.hasPrefix("wrote 75 tensors of stage 'G' (moving average) at step 2 to"), "\(ema)")
        let weights = try Self.ganflow(["export", run, "--stage", "G", "--out", out + "/weights.safetensors"])
        #expect(weights.hasPrefix("wrote 75 tensors of stage 'G' at step 2 to"), "\(weights)")
        let a = try SafeTensorsArchive(contentsOf: out + "/ema.safetensors"), b = try SafeTensorsArchive(contentsOf: out + "/weights.safetensors")
        #expect(a.names == b.names)
        let differing = try a.names.filter { try a.tensor($0).scalars != b.tensor($0).scalars }
        #expect(!differing.isEmpty, "the moving average equals the weights")
    }
}
