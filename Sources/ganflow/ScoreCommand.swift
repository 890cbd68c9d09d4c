import ArgumentParser
import Foundation
import PipelineGraph
import PipelineStages
import TensorRuntime

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Score a folder of images against reference images with the metrics of the metric.* stages.",
        discussion: """
            Both sets go through a trained classifier (a classifier.cnn exported with `ganflow export`);
            its penultimate layer is the feature space of the Frechet distance (fid), KID (kid.mean,
            kid.std), precision and recall, and its decisions give the mode coverage (modes, kl).
            Images of any tool can be scored: every PNG under DIR, at any depth.

              ganflow score samples/ --reference /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
            """)

    @Argument(help: "A folder of PNG images (searched at any depth), or an IDX image file.")
    var directory: String

    @Option(help: "The reference images: a folder of PNGs or an IDX image file (plain or .gz).")
    var reference: String

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

    @Option(help: "Seed of the KID and precision/recall subsets.")
    var seed: Int = 0

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        if size < 8 { throw ValidationError("--size must be at least 8") }
        if let limit, limit < 2 { throw ValidationError("--limit must be at least 2") }
        if kidSubsets < 1 || kidSubsetSize < 2 { throw ValidationError("--kid-subsets must be at least 1 and --kid-subset-size at least 2") }
        if k < 1 { throw ValidationError("-k must be at least 1") }
        if seed < 0 { throw ValidationError("--seed must be >= 0") }
    }

    func run() throws {
        do {
            let classifier = try self.classifier
                ?? ProjectFile.locate("Fixtures/models/fashion-classifier.safetensors", what: "the default classifier", option: "--classifier")
            let extractor: FeatureExtractor
            do {
                extractor = try FeatureExtractor(weights: classifier, size: size)
            } catch let p as StageProblem {
                throw PipelineErrors([PipelineError("score.classifier", file: classifier, p.message)])
            }
            let images = try ImageSet(directory, channels: extractor.channels)
            let references = try ImageSet(reference, channels: extractor.channels)
            let card = try Scorecard(images: images, reference: references, extractor: extractor, limit: limit,
                                     kidSubsets: kidSubsets, kidSubsetSize: kidSubsetSize, k: k, seed: UInt64(seed))
            if json {
                var entries: [(String, JSONValue)] = [("images", .number(Double(card.count))), ("reference", .number(Double(card.referenceCount)))]
                entries += card.entries.map { ($0.0, .number($0.1)) }
                entries.append(("histogram", .array(card.histogram.map { .number(Double($0)) })))
                print(JSONValue.object(entries).serialized(indent: nil))
            } else {
                print("\(card.count) images from \(directory) against \(card.referenceCount) from \(reference)")
                for (name, value) in card.entries {
                    print(name.padding(toLength: 10, withPad: " ", startingAt: 0) + String(format: "%.6g", value))
                }
                print("histogram " + card.histogram.map(String.init).joined(separator: " "))
            }
        } catch {
            throw report(error)
        }
    }
}
