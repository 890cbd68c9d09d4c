import ArgumentParser
import Foundation
import ImageIO
import PipelineGraph
import PipelineStages

/// `ganflow dataset ...`: work on datasets outside a pipeline.
struct DatasetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Prepare image datasets: decode, orient and resize once into a memory-mapped file.",
        subcommands: [DatasetPrepareCommand.self, DatasetBenchCommand.self])
}

struct DatasetPrepareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Decode a folder or ZIP of JPEG/PNG/WebP/HEIC/AVIF images once into a prepared dataset (.gfd) for dataset.prepared.",
        discussion: """
            Images are found at any depth, oriented by their EXIF tag and resized as dataset.images
            serves them (JPEGs shrink while decoding, then area averaging), then packed as bytes with
            their labels (first-level subfolders, or a StyleGAN2-ADA dataset.json) and source names.
            Files that are not images by extension are skipped; all skipped files are listed at the end.
            Preparing the same source twice gives the same bytes.

              ganflow dataset prepare ~/Pictures/cats --size 64 --no-labels --out cats64.gfd
            """)

    @Argument(help: "A folder of images (searched at any depth) or a ZIP archive of them.")
    var source: String

    @Option(help: "Side of the square images written.")
    var size: Int

    @Option(help: "The prepared file to write (.gfd).")
    var out: String

    @Option(help: "How images reach --size: resize (shorter side, then centre crop), stretch, centerCrop or pad.")
    var fit: String = "resize"

    @Option(help: "Channels written: 1 gray or 3 RGB.")
    var channels: Int = 3

    @Flag(inversion: .prefixedNo, help: "Labels from dataset.json or first-level subfolders.")
    var labels = true

    @Option(help: "Comma-separated extensions taken for images.")
    var extensions: String = ImageFile.defaultExtensions.joined(separator: ",")

    @Option(name: .customLong("max-pixels"), help: "Largest width x height a header may declare (decompression bombs are refused).")
    var maxPixels: Int = ImageFile.defaultPixelLimit

    @Option(name: .customLong("on-error"), help: "On a file that cannot be decoded: stop, or skip it and list it at the end.")
    var onError: String = "stop"

    @Flag(help: "No progress bar.")
    var quiet = false

    func validate() throws {
        if size < 1 || size > 4096 { throw ValidationError("--size must be 1 to 4096") }
        if ![1, 3].contains(channels) { throw ValidationError("--channels must be 1 or 3") }
        if !DatasetPreparation.Options.fits.contains(fit) {
            throw ValidationError("--fit must be one of \(DatasetPreparation.Options.fits.joined(separator: ", "))")
        }
        if !["stop", "skip"].contains(onError) { throw ValidationError("--on-error must be stop or skip") }
        if maxPixels < 1 { throw ValidationError("--max-pixels must be positive") }
    }

    func run() throws {
        let options = DatasetPreparation.Options(
            size: size, fit: fit, channels: channels, labelled: labels,
            extensions: extensions.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) },
            pixelLimit: maxPixels, skipErrors: onError == "skip")
        let bar = ProgressBar(enabled: !quiet)
        let summary: DatasetPreparation.Summary
        do {
            summary = try DatasetPreparation.prepare(source: source, out: out, options: options) { bar.show($0, $1) }
        } catch {
            bar.end()
            throw report(error)
        }
        bar.end()
        let shape = summary.shape.map(String.init).joined(separator: "x")
        let classes = summary.classes.isEmpty ? "no labels" : "\(summary.classes.count) classes"
        print("wrote \(out): \(summary.written) images of \(shape), \(classes)")
        if !summary.unreadable.isEmpty {
            print("skipped \(summary.unreadable.count) unreadable file\(summary.unreadable.count == 1 ? "" : "s"):")
            for u in summary.unreadable { print("  \(u.path): \(u.reason)") }
        }
        if !summary.ignored.isEmpty {
            print("skipped \(summary.ignored.count) file\(summary.ignored.count == 1 ? " that is not an image" : "s that are not images") by extension:")
            for f in summary.ignored { print("  \(f)") }
        }
        for note in summary.notes { print(note) }
    }
}

/// `ganflow dataset bench`: how fast a dataset stage serves images, as a training run takes them.
struct DatasetBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time a dataset stage serving batches: a folder or ZIP through dataset.images, a .gfd through dataset.prepared.",
        discussion: """
            Builds the stage as a pipeline would (shuffled, prefetching, decoding on every core) and
            prints the images per second served after a warm-up batch. Scripts/bench-data.sh runs it
            beside PIL + torchvision's ImageFolder and DataLoader.
            """)

    @Argument(help: "A folder or ZIP of images, or a prepared .gfd file.")
    var path: String

    @Option(help: "Side of the square images served.")
    var size: Int = 64

    @Option(help: "Images per batch.")
    var batch: Int = 64

    @Option(help: "Images to serve in the timed part (rounded up to whole batches).")
    var images: Int = 500

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        let prepared = (try? PreparedDataset(path: path)) != nil
        let type = prepared ? "dataset.prepared" : "dataset.images"
        let extra = prepared ? "" : #", "size": \#(size), "channels": 3"#
        let encodedPath = String(decoding: try JSONEncoder().encode(path), as: UTF8.self)
        // The grid sink only gives the pipeline a stage that acts; the benchmark evaluates the
        // dataset stage alone and never runs it.
        let text = """
            { "name": "bench", "seed": 0, "steps": 1,
              "stages": { "data": { "type": "\(type)", "path": \(encodedPath), "batch": \(batch), "labels": false\(extra) },
                          "grid": { "type": "sink.grid", "input": "data.images" } },
              "schedule": [ { "run": "grid" } ] }
            """
        let dir = NSTemporaryDirectory() + "/ganflow-dataset-bench-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let doc = try PipelineDocument.parse(text, file: FileManager.default.currentDirectoryPath + "/bench.json")
            let pipeline = try PipelineBuilder(registry: .standard).build(doc, outputDirectory: dir)
            let stage = pipeline.nodes["data"]!.stage
            func serve(_ index: Int) throws {
                _ = try stage.evaluate(Evaluation(outputs: ["images"], inputs: [:], step: index + 1, index: index, mode: .train, seed: 0, stageID: "data"))
            }
            try serve(0)  // warm-up: the first batch waits for the prefetcher to start
            let batches = (images + batch - 1) / batch
            let start = DispatchTime.now().uptimeNanoseconds
            for i in 0..<batches { try serve(i + 1) }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let rate = Double(batches * batch) / seconds
            try stage.finish()
            if json {
                print(#"{"stage": "\#(type)", "images": \#(batches * batch), "seconds": \#(seconds), "imagesPerSecond": \#(rate)}"#)
            } else {
                print(String(format: "%@: %d images of %dx%d in %.3f s: %.1f images/s", type, batches * batch, size, size, seconds, rate))
            }
        } catch {
            throw report(error)
        }
    }
}
