import Foundation
import ImageIO
import Testing

/// `ganflow score` and `ganflow dataset` with the options of the README's Commands table, through
/// the binary: statistics files as references, ZIP archives, Inception features, prepared datasets.
@Suite struct ScoreDatasetCommandTests {
    static let folder = fixture("fashion-mnist"), idx = fixture("idx/t10k-256-images-idx3-ubyte.gz")

    static func json(_ output: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], "\(output)")
    }

    static func score(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let (status, output) = try execute(ganflowExecutable, ["score"] + arguments + ["--json"])
        #expect(status == 0, "\(output)", sourceLocation: sourceLocation)
        return try json(output)
    }

    @Test func savedStatisticsScoreAsTheImagesTheyCameFrom() throws {
        let out = temporaryDirectory("score-stats"), stats = out + "/fashion.npz"
        let (status, output) = try execute(ganflowExecutable, ["score", Self.folder, "--limit", "40", "--save-stats", stats])
        #expect(status == 0 && output == "40 images from \(Self.folder): \(stats) written\n", "\(output)")
        let arrays = try NumPyArchive.read(stats, names: ["mu", "sigma"])
        #expect(arrays["mu"]?.shape == [128] && arrays["sigma"]?.shape == [128, 128])

        let againstImages = try Self.score([Self.idx, "--reference", Self.folder, "--limit", "40", "--kid-subsets", "2", "--kid-subset-size", "20"])
        let againstStats = try Self.score([Self.idx, "--reference", stats, "--limit", "40"])
        let fid = try #require(againstImages["fid"] as? Double)
        #expect(abs(fid - (againstStats["fid"] as? Double ?? 0)) <= 1e-9 * fid, "\(againstImages) \(againstStats)")
        // Statistics give FID alone: KID and precision/recall need the reference images.
        #expect(againstStats["reference"] is NSNull && againstStats["kid_mean"] is NSNull && againstStats["precision"] is NSNull)
    }

    @Test func aFolderOfOneImageIsAnErrorNamingIt() throws {
        // What `ganflow sample --grid` writes: one grid.png. Scores need two images or more on each side.
        let out = temporaryDirectory("score-one"), one = out + "/grid-only"
        try FileManager.default.createDirectory(atPath: one, withIntermediateDirectories: true)
        let bags = Self.folder + "/Bag"
        let png = try #require(try FileManager.default.contentsOfDirectory(atPath: bags).sorted().first { $0.hasSuffix(".png") })
        try FileManager.default.copyItem(atPath: bags + "/" + png, toPath: one + "/grid.png")
        let expected = ": holds 1 image; scoring needs at least 2 (`ganflow sample --grid` writes one grid image: leave out --grid for one PNG per sample)"
        let (status, output) = try execute(ganflowExecutable, ["score", one, "--reference", Self.idx])
        #expect(status == 1 && output.contains("error: \(one)" + expected), "\(output)")
        let (againstOne, referenceOutput) = try execute(ganflowExecutable, ["score", Self.idx, "--reference", one])
        #expect(againstOne == 1 && referenceOutput.contains("error: \(one)" + expected), "\(referenceOutput)")
    }

    @Test func aZIPArchiveScoresAsTheFolderItHolds() throws {
        let out = temporaryDirectory("score-zip"), archive = out + "/fashion.zip"
        // Debian's Python (make check-schema's) writes the archive: entries in the order of os.walk.
        let (zipped, zipOutput) = try execute("/usr/bin/python3", ["-c", "import shutil, sys; shutil.make_archive(sys.argv[1], 'zip', sys.argv[2])",
                                                                  String(archive.dropLast(4)), Self.folder])
        #expect(zipped == 0, "\(zipOutput)")
        let options = ["--reference", Self.idx, "--kid-subsets", "2", "--kid-subset-size", "20"]
        let fromFolder = try Self.score([Self.folder] + options), fromZIP = try Self.score([archive] + options)
        #expect(fromFolder["images"] as? Int == 300)
        #expect(NSDictionary(dictionary: fromFolder) == NSDictionary(dictionary: fromZIP), "\(fromFolder)\n\(fromZIP)")
    }

    @Test func inceptionFeaturesWithTheUsersWeights() throws {
        // pytorch-fid's architecture at a sixteenth of the channels with seeded weights (the
        // golden fixture of FIDInceptionTests): the real weights are the user's to bring.
        let out = temporaryDirectory("score-inception"), weights = fixture("golden/fid-inception-w16.safetensors")
        let card = try Self.score([fixture("photos/patches"), "--reference", Self.folder, "--limit", "6", "--k", "2",
                                   "--features", "inception", "--weights", weights, "--kid-subsets", "2", "--kid-subset-size", "3",
                                   "--save-features", out + "/features.npz"])
        #expect(card["images"] as? Int == 6 && card["reference"] as? Int == 6, "\(card)")
        for key in ["fid", "kid_mean", "precision", "recall", "is_mean", "is_std"] { #expect(card[key] is Double, "\(key): \(card)") }
        #expect(card["histogram"] == nil && card["modes"] == nil, "\(card)")
        let saved = try NumPyArchive.read(out + "/features.npz", names: ["features", "logits"])
        #expect(saved["features"]?.shape == [6, 128] && saved["logits"]?.shape.first == 6, "\(saved.mapValues(\.shape))")

        let (missing, missingOutput) = try execute(ganflowExecutable, ["score", Self.folder, "--reference", Self.idx, "--features", "inception"])
        #expect(missing == 1 && missingOutput.hasPrefix("Error: --features inception needs --weights FILE"), "\(missingOutput)")
    }

    @Test func prepareSkipsAndListsUnreadableFilesAndBenchServesTheResult() throws {
        let out = temporaryDirectory("dataset-prepare"), source = out + "/mixed", good = out + "/good"
        let readable = ["images/chelsea-baseline.jpg", "images/coffee-lossy.webp"], broken = ["images/broken/truncated.jpg", "images/broken/not-an-image.jpg"]
        for (folder, files) in [(source, readable + broken), (good, readable)] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for file in files { try FileManager.default.copyItem(atPath: fixture(file), toPath: folder + "/" + (file as NSString).lastPathComponent) }
        }
        // By default the first unreadable file stops it, named, with status 1.
        let (stopped, stoppedOutput) = try execute(ganflowExecutable, ["dataset", "prepare", source, "--size", "16", "--out", out + "/stop.gfd",
                                                                      "--no-labels"])
        #expect(stopped == 1 && stoppedOutput.contains("error: \(source)/not-an-image.jpg: not a PNG, JPEG, WebP or HEIF (HEIC, AVIF) file"), "\(stoppedOutput)")
        #expect(!FileManager.default.fileExists(atPath: out + "/stop.gfd"))

        let gfd = out + "/mixed.gfd"
        let (status, output) = try execute(ganflowExecutable, ["dataset", "prepare", source, "--size", "16", "--out", gfd, "--fit", "centerCrop",
                                                              "--channels", "1", "--no-labels", "--on-error", "skip"])
        #expect(status == 0, "\(output)")
        #expect(output.hasSuffix("""
            wrote \(gfd): 2 images of 1x16x16, no labels
            skipped 2 unreadable files:
              \(source)/not-an-image.jpg: not a PNG, JPEG, WebP or HEIF (HEIC, AVIF) file (starts with bytes 54 68 69 73 20 69 73 20)
              \(source)/truncated.jpg: damaged JPEG data: Premature end of JPEG file

            """), "\(output)")
        // The progress bar shows the files as they go.
        #expect(output.contains("4/4 images"), "\(output)")

        // Scoring the folder stops at its first unreadable file, and says how to score the rest.
        let (scored, scoredOutput) = try execute(ganflowExecutable, ["score", source, "--reference", Self.idx])
        #expect(scored == 1 && scoredOutput.contains("error: \(source)/not-an-image.jpg: not a PNG, JPEG, WebP or HEIF (HEIC, AVIF) file")
                && scoredOutput.contains("; to score the folder without its unreadable files, prepare it first (`ganflow dataset prepare \(source) --size N --no-labels --on-error skip --out F.gfd`) and score F.gfd"),
                "\(scoredOutput)")

        // A folder where every file fails: the error gives each file's reason, with status 1.
        let allBroken = out + "/broken"
        try FileManager.default.createDirectory(atPath: allBroken, withIntermediateDirectories: true)
        for file in broken { try FileManager.default.copyItem(atPath: fixture(file), toPath: allBroken + "/" + (file as NSString).lastPathComponent) }
        let (none, noneOutput) = try execute(ganflowExecutable, ["dataset", "prepare", allBroken, "--size", "16", "--out", out + "/none.gfd",
                                                                "--no-labels", "--on-error", "skip"])
        #expect(none == 1 && noneOutput.contains("\(allBroken): no readable images: all 2 files failed (\(allBroken)/not-an-image.jpg: not a PNG, JPEG, WebP or HEIF (HEIC, AVIF) file"), "\(noneOutput)")
        #expect(noneOutput.contains("\(allBroken)/truncated.jpg: damaged JPEG data"), "\(noneOutput)")
        #expect(!FileManager.default.fileExists(atPath: out + "/none.gfd"))

        // `dataset bench` serves the prepared file and the folder, as a training run takes them.
        for (path, stage) in [(gfd, "dataset.prepared"), (good, "dataset.images")] {
            let (b, bOutput) = try execute(ganflowExecutable, ["dataset", "bench", path, "--size", "16", "--batch", "2", "--images", "8", "--json"])
            #expect(b == 0, "\(bOutput)")
            let result = try Self.json(bOutput)
            #expect(result["stage"] as? String == stage && result["images"] as? Int == 8 && (result["imagesPerSecond"] as? Double ?? 0) > 0, "\(result)")
        }
    }
}
