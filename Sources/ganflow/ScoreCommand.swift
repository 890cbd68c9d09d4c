import ArgumentParser
import Foundation
import ImageIO
import PipelineGraph
import PipelineStages
import TensorRuntime

struct ScoreCommand: ParsableCommand {
    enum FeatureSpace: String, ExpressibleByArgument, CaseIterable {
        case classifier, inception
    }

    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Score a folder of images against reference images or statistics with the metrics of the metric.* stages.",
        discussion: """
            Both sets go through a feature network: a trained classifier (`--features classifier`, a
            classifier.cnn exported with `ganflow export`; the default) or the FID Inception v3 of
            pytorch-fid (`--features inception --weights FILE`, the user's weights converted by
            Scripts/convert_fid_inception.py). Its features give the Frechet distance (fid), KID
            (kid_mean, kid_std), precision and recall; the classifier's decisions give the mode
            coverage (modes, kl), Inception's logits the Inception Score (is_mean, is_std).
            Images of any tool can be scored: every JPEG, PNG and WebP under DIR (or in a ZIP), at any
            depth and of any sizes (each is adapted to the network on its own).

              ganflow score samples/ --reference /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
              ganflow score samples/ --reference real/ --features inception --weights fid-inception.safetensors --json
              ganflow score real/ --features inception --weights fid-inception.safetensors --save-stats real.npz
              ganflow score samples/ --reference real.npz --features inception --weights fid-inception.safetensors

            A reference .npz holds `mu` and `sigma` as pytorch-fid writes them; against statistics
            only fid can be computed (KID and precision/recall need the reference images).
            """)

    @Argument(help: "A folder or ZIP of JPEG, PNG, WebP, HEIC or AVIF images (searched at any depth, any sizes), an IDX image file, or a prepared dataset (.gfd).")
    var directory: String

    @Option(help: "The reference: a folder or ZIP of images, an IDX image file (plain or .gz), a prepared dataset (.gfd), or statistics (.npz of mu and sigma).")
    var reference: String?

    @Option(help: "The feature network: classifier or inception.")
    var features: FeatureSpace = .classifier

    @Option(help: "The feature network's weights (inception: required; classifier: defaults to --classifier).")
    var weights: String?

    @Option(help: "The classifier's weights (safetensors of a classifier.cnn; default: the project's Fixtures/models/fashion-classifier.safetensors, found from the executable's or the package's location).")
    var classifier: String?

    @Option(help: "Side of the classifier's input; larger images are centre-cropped to it, smaller ones padded.")
    var size: Int = 28

    @Option(help: "Score at most this many images of each set.")
    var limit: Int?

    @Option(name: .customLong("kid-subsets"), help: "Random subsets for KID.")
    var kidSubsets: Int = 100

    @Option(name: .customLong("kid-subset-size"), help: "Images per KID subset (at most the smaller set's size).")
    var kidSubsetSize: Int = 1000

    @Option(help: "The neighbour that sets the radius of the precision/recall balls.")
    var k: Int = 3

    @Option(help: "Seed of the KID, precision/recall and Inception Score subsets.")
    var seed: Int = 0

    @Option(help: "Images per forward pass (default: 500 for the classifier, 50 for Inception).")
    var chunk: Int?

    @Option(name: .customLong("save-stats"), help: "Write the mean and covariance of DIR's features to this .npz (pytorch-fid's layout).")
    var saveStats: String?

    @Option(name: .customLong("save-features"), help: "Write DIR's features and logits to this .npz ('features' [n, d], 'logits' [n, classes]).")
    var saveFeatures: String?

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @Flag(help: "No progress bars (they are drawn only when standard error is a terminal).")
    var quiet = false

    @Flag(help: "Profile the feature extraction of DIR and print the time per op (to standard error).")
    var profile = false

    func validate() throws {
        if size < 8 { throw ValidationError("--size must be at least 8") }
        if let limit, limit < 2 { throw ValidationError("--limit must be at least 2") }
        if kidSubsets < 1 || kidSubsetSize < 2 { throw ValidationError("--kid-subsets must be at least 1 and --kid-subset-size at least 2") }
        if k < 1 { throw ValidationError("--k must be at least 1") }
        if seed < 0 { throw ValidationError("--seed must be >= 0") }
        if let chunk, chunk < 1 { throw ValidationError("--chunk must be at least 1") }
        if features == .inception && weights == nil {
            throw ValidationError("--features inception needs --weights FILE: pytorch-fid's pt_inception-2015-12-05-*.pth converted by Scripts/convert_fid_inception.py (GANFlow ships no weights)")
        }
        if reference == nil && saveStats == nil && saveFeatures == nil {
            throw ValidationError("give --reference DIR_OR_STATS to score against, or --save-stats / --save-features to only save DIR's")
        }
    }

    /// `set`, or an error naming it when it holds fewer than the two images every score needs (a
    /// mean and covariance, KID's subsets).
    private func scorable(_ set: ImageSet) throws -> ImageSet {
        guard set.count < 2 else { return set }
        throw ImageIOError(path: set.path, "holds \(set.count) image\(set.count == 1 ? "" : "s"); scoring needs at least 2 "
            + "(`ganflow sample --grid` writes one grid image: leave out --grid for one PNG per sample)")
    }

    /// The features of the first `count` images of `set`, `chunk` at a time, with a progress bar
    /// naming the set.
    private func extractFeatures(of set: ImageSet, count: Int, chunk: Int, network: any ImageFeatureNetwork) throws -> (features: Tensor, logits: Tensor) {
        let bar = ProgressBar(enabled: !quiet, label: set.path, terminalOnly: true)
        defer { bar.end() }
        let result: (features: Tensor, logits: Tensor)
        do {
            result = try network.extract(count, chunk: chunk) { range in
                bar.show(range.lowerBound, count)
                return try set.images(range, for: network)
            }
        } catch let e as ImageIOError where e.path.hasPrefix(set.path + "/") {
            // A file in a folder or archive that does not decode: say how to score the rest.
            throw ImageIOError(path: e.path, e.reason + "; to score the folder without its unreadable files, prepare it first "
                + "(`ganflow dataset prepare \(set.path) --size N --no-labels --on-error skip --out F.gfd`) and score F.gfd")
        }
        bar.show(count, count)
        return result
    }

    func run() throws {
        do {
            let network: any ImageFeatureNetwork
            let channels: Int
            switch features {
            case .classifier:
                let path = try weights ?? classifier
                    ?? ProjectFile.locate("Fixtures/models/fashion-classifier.safetensors", what: "the default classifier", option: "--classifier")
                do {
                    let extractor = try FeatureExtractor(weights: path, size: size)
                    (network, channels) = (extractor, extractor.channels)
                } catch let p as StageProblem {
                    throw PipelineErrors([PipelineError("score.weights", file: path, p.message)])
                }
            case .inception:
                let path = weights!
                do {
                    network = try FIDInceptionLoader.load(path)
                } catch let p as StageProblem {
                    // The loader's messages start with the file, which the error names already.
                    let message = p.message.hasPrefix(path + ": ") ? String(p.message.dropFirst(path.count + 2)) : p.message
                    throw PipelineErrors([PipelineError("score.weights", file: path, message)])
                }
                channels = 3
            }
            let chunk = chunk ?? (features == .inception ? 50 : 500)
            let images = try scorable(ImageSet(directory, channels: channels))
            let n = min(limit ?? images.count, images.count)
            if profile {
                Profiler.reset()
                Profiler.isEnabled = true
            }
            let start = DispatchTime.now().uptimeNanoseconds
            let fake = try extractFeatures(of: images, count: n, chunk: chunk, network: network)
            if profile {
                Profiler.isEnabled = false
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                let header = "profile: \(n) images of \(directory), chunk \(chunk), \(Runtime.threads) threads, "
                    + String(format: "%.2f s with the profiler on; times in the whole extraction", seconds)
                FileHandle.standardError.write(Data((header + "\n" + Profiler.report() + "\n").utf8))
            }
            if let saveFeatures {
                try NumPyArchive.write([("features", NumPyArray(shape: fake.features.shape, values: fake.features.scalars.map(Double.init))),
                                        ("logits", NumPyArray(shape: fake.logits.shape, values: fake.logits.scalars.map(Double.init)))],
                                       to: saveFeatures)
            }
            if let saveStats {
                try GaussianStatistics(features: fake.features).write(npz: saveStats)
            }
            guard let reference else {
                if !json { print("\(n) images from \(directory): " + [saveStats, saveFeatures].compactMap { $0 }.joined(separator: ", ") + " written") }
                return
            }
            let real: ScoreReference
            if reference.lowercased().hasSuffix(".npz") {
                let statistics = try GaussianStatistics(npz: reference)
                guard statistics.dimension == network.dimension else {
                    throw ImageIOError(path: reference, "statistics of \(statistics.dimension)-d features cannot be compared with the \(network.dimension)-d features of --features \(features.rawValue)")
                }
                real = .statistics(statistics, count: nil)
            } else {
                let references = try scorable(ImageSet(reference, channels: channels))
                let m = min(limit ?? references.count, references.count)
                let r = try extractFeatures(of: references, count: m, chunk: chunk, network: network)
                real = .features(features: r.features, logits: r.logits)
            }
            let card = try Scorecard(real: real, fake: fake, kidSubsets: kidSubsets, kidSubsetSize: kidSubsetSize, k: k, minShare: 0.01,
                                     seed: UInt64(seed), inceptionScore: features == .inception)
            if json {
                var entries: [(String, JSONValue)] = [("images", .number(Double(card.count))),
                                                      ("reference", card.referenceCount.map { .number(Double($0)) } ?? .null)]
                entries += card.entries.map { ($0.0, $0.1.map(JSONValue.number) ?? .null) }
                if features == .classifier { entries.append(("histogram", .array(card.histogram.map { .number(Double($0)) }))) }
                print(JSONValue.object(entries).serialized(indent: nil))
            } else {
                print("\(card.count) images from \(directory) against " + (card.referenceCount.map { "\($0) from \(reference)" } ?? "the statistics in \(reference)"))
                for (name, value) in card.entries {
                    print(name.padding(toLength: 10, withPad: " ", startingAt: 0) + (value.map { String(format: "%.6g", $0) } ?? "-"))
                }
                if features == .classifier { print("histogram " + card.histogram.map(String.init).joined(separator: " ")) }
            }
        } catch {
            throw report(error)
        }
    }
}
