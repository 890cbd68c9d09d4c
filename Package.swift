// swift-tools-version: 6.0
import PackageDescription

// Elementwise kernels are plain Swift loops; let the compiler use AVX2 and FMA for them.
// oneDNN picks its own AVX-512/AMX code at run time, whatever this says.
// `-fno-math-errno`: on Linux `Float.squareRoot()` goes through a C shim that clang compiles as a
// call to `sqrtf` (which may set errno), and that call stops loops from vectorising; without
// errno it becomes `vsqrtps`. Nothing here reads errno after a math function.
// Fuzz builds (GANFLOW_FUZZ, see below) use plain -O and no -Xcc flag. (Builds without coverage
// counters were first blamed on those flags; the cause found later was the order of the -sanitize
// flags, see Scripts/fuzz.sh. Plain -O is kept, as the fuzz figures were measured with it.)
let fuzzing = Context.environment["GANFLOW_FUZZ"] != nil
let releaseKernelFlags = fuzzing ? ["-target-cpu", "haswell"] : ["-Ounchecked", "-target-cpu", "haswell", "-Xcc", "-fno-math-errno"]
let kernelFlags: [SwiftSetting] = [
    .unsafeFlags(releaseKernelFlags, .when(configuration: .release)),
    .unsafeFlags(["-target-cpu", "haswell", "-Xcc", "-fno-math-errno"], .when(configuration: .debug)),
]

let package = Package(
    name: "GANFlow",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ganflow", targets: ["ganflow"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // libzip (Debian libzip-dev): ZIP archives of images and NumPy .npz statistics, read in place.
        .systemLibrary(name: "CZip", path: "Sources/CZip"),
        // libjpeg-turbo's TurboJPEG API (Debian libturbojpeg0-dev) and libwebp's decoder (libwebp-dev).
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG"),
        .systemLibrary(name: "CWebP", path: "Sources/CWebP"),
        .systemLibrary(name: "CHEIF", path: "Sources/CHEIF"),
        // Reference LAPACK (Debian liblapack-dev): symmetric eigendecompositions for the metrics at 2048 dimensions.
        .systemLibrary(name: "CLAPACK", path: "Sources/CLAPACK"),
        // Opens libmpi with dlopen under mpirun only: the build links nothing from MPI.
        .target(name: "CMPIShim", path: "Sources/CMPIShim", linkerSettings: [.linkedLibrary("dl")]),
        .target(
            name: "TensorRuntime",
            dependencies: ["CDNNL"],
            swiftSettings: kernelFlags),
        .target(
            name: "MPICollectives",
            dependencies: ["CMPIShim", "TensorRuntime"]),
        .target(
            name: "NeuralNet",
            dependencies: ["TensorRuntime"],
            swiftSettings: kernelFlags),
        .target(
            name: "ImageIO",
            dependencies: ["TensorRuntime", "CPNG", "CZlib", "CZip", "CTurboJPEG", "CWebP", "CHEIF"],
            swiftSettings: kernelFlags),
        .target(
            name: "PipelineGraph",
            dependencies: ["TensorRuntime", .product(name: "Logging", package: "swift-log")],
            swiftSettings: kernelFlags),
        // Run records, HTML reports and TensorBoard event files: read and written around runs, not stages.
        .target(
            name: "Reporting",
            dependencies: ["TensorRuntime", "ImageIO", "PipelineGraph"],
            swiftSettings: kernelFlags),
        .target(
            name: "PipelineStages",
            dependencies: ["TensorRuntime", "NeuralNet", "ImageIO", "PipelineGraph", "Reporting", "CLAPACK"],
            swiftSettings: kernelFlags),
        .executableTarget(
            name: "ganflow",
            dependencies: [
                "TensorRuntime", "NeuralNet", "ImageIO", "PipelineGraph", "Reporting", "PipelineStages", "MPICollectives",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: kernelFlags),
        .target(
            name: "GANFlowTestSupport",
            dependencies: ["TensorRuntime"],
            path: "Sources/GANFlowTestSupport"),
        .testTarget(name: "TensorRuntimeTests", dependencies: ["TensorRuntime", "GANFlowTestSupport"]),
        .testTarget(name: "NeuralNetTests", dependencies: ["NeuralNet", "TensorRuntime", "GANFlowTestSupport"]),
        .testTarget(name: "ImageIOTests", dependencies: ["ImageIO", "TensorRuntime", "GANFlowTestSupport"]),
        .testTarget(name: "PipelineGraphTests", dependencies: ["PipelineGraph", "TensorRuntime", "GANFlowTestSupport"]),
        .testTarget(
            name: "PipelineStagesTests",
            dependencies: ["PipelineStages", "PipelineGraph", "Reporting", "NeuralNet", "ImageIO", "TensorRuntime", "GANFlowTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)

// libFuzzer harnesses, declared only when GANFLOW_FUZZ is set: their entry point is libFuzzer's
// `main`, which only a `--sanitize=fuzzer` build links, so a plain `swift build` must not see them.
// `Scripts/fuzz.sh` sets the variable and builds them in `.build-fuzz`.
if fuzzing {
    let harness: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]
    package.targets += [
        .target(name: "FuzzSupport", path: "Fuzz/Support"),
        .executableTarget(name: "FuzzPipeline", dependencies: ["FuzzSupport", "PipelineGraph", "PipelineStages"],
                          path: "Fuzz/Pipeline", swiftSettings: harness),
        .executableTarget(name: "FuzzSafeTensors", dependencies: ["FuzzSupport", "TensorRuntime", "PipelineGraph"],
                          path: "Fuzz/SafeTensors", swiftSettings: harness),
        .executableTarget(name: "FuzzIDX", dependencies: ["FuzzSupport", "ImageIO"], path: "Fuzz/IDX", swiftSettings: harness),
        .executableTarget(name: "FuzzCIFAR", dependencies: ["FuzzSupport", "ImageIO"], path: "Fuzz/CIFAR", swiftSettings: harness),
        .executableTarget(name: "FuzzPNG", dependencies: ["FuzzSupport", "ImageIO"], path: "Fuzz/PNG", swiftSettings: harness),
        .target(name: "ImageFileFuzzing", dependencies: ["ImageIO"], path: "Fuzz/ImageFile"),
        .executableTarget(name: "FuzzJPEG", dependencies: ["ImageFileFuzzing"], path: "Fuzz/JPEG", swiftSettings: harness),
        .executableTarget(name: "FuzzWebP", dependencies: ["ImageFileFuzzing"], path: "Fuzz/WebP", swiftSettings: harness),
        .executableTarget(name: "FuzzHEIF", dependencies: ["ImageFileFuzzing"], path: "Fuzz/HEIF", swiftSettings: harness),
    ]
}

// `GANFLOW_TEST_ONLY=PipelineGraphTests` (a comma-separated list of test targets) keeps only those
// test targets and the targets they depend on, so a sanitized build of a subset (CI's thread
// sanitizer pass over the scheduler) compiles nothing else. Normal builds never set it.
if let only = Context.environment["GANFLOW_TEST_ONLY"] {
    var keep = Set<String>()
    var pending = only.split(separator: ",").map(String.init)
    while let name = pending.popLast() {
        guard keep.insert(name).inserted, let target = package.targets.first(where: { $0.name == name }) else { continue }
        for dependency in target.dependencies {
            switch dependency {
            case .targetItem(let name, _), .byNameItem(let name, _): pending.append(name)
            default: break
            }
        }
    }
    package.targets.removeAll { !keep.contains($0.name) }
    package.products = []
}
