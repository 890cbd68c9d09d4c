import Foundation
import FuzzSupport
import PipelineGraph
import PipelineStages

/// Any bytes as a pipeline file: decoded, validated and built against the standard registry.
/// The only acceptable outcomes are a built pipeline or a thrown error.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPipeline(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = FuzzInput.bytes(data, size)
    do {
        let doc = try PipelineDocument.parse(bytes: bytes, file: "fuzz.json")
        _ = try PipelineBuilder(registry: .standard).build(doc, outputDirectory: NSTemporaryDirectory() + "/ganflow-fuzz-out")
    } catch {
        _ = "\(error)"
    }
    return 0
}
