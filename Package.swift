// swift-tools-version: 6.0
import PackageDescription

// Elementwise kernels are plain Swift loops; let the compiler use AVX2 and FMA for them.
// oneDNN picks its own AVX-512/AMX code at run time, whatever this says.
// `-fno-math-errno`: on Linux `Float.squareRoot()` goes through a C shim that clang compiles as a
// call to `sqrtf` (which may set errno), and that call stops loops from vectorising; without
// errno it becomes `vsqrtps`. Nothing here reads errno after a math function.
let kernelFlags: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-target-cpu", "haswell", "-Xcc", "-fno-math-errno"], .when(configuration: .release)),
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
            dependencies: ["TensorRuntime", "CPNG", "CZlib"],
            swiftSettings: kernelFlags),
        .target(
            name: "PipelineGraph",
            dependencies: ["TensorRuntime", .product(name: "Logging", package: "swift-log")],
            swiftSettings: kernelFlags),
        .target(
            name: "PipelineStages",
            dependencies: ["TensorRuntime", "NeuralNet", "ImageIO", "PipelineGraph"],
            swiftSettings: kernelFlags),
        .executableTarget(
            name: "ganflow",
            dependencies: [
                "TensorRuntime", "NeuralNet", "ImageIO", "PipelineGraph", "PipelineStages", "MPICollectives",
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
            dependencies: ["PipelineStages", "PipelineGraph", "NeuralNet", "ImageIO", "TensorRuntime", "GANFlowTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
