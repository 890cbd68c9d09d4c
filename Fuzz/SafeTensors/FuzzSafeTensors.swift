import FuzzSupport
import PipelineGraph
import TensorRuntime

/// Any bytes as a checkpoint: the archive is validated, then every entry is read as a checkpoint
/// restore would read it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = FuzzInput.bytes(data, size)
    guard let archive = try? SafeTensorsArchive(decoding: bytes, source: "fuzz.safetensors") else { return 0 }
    for name in archive.names {
        if let t = try? archive.tensor(name) { _ = t.shape; _ = t.count }
        _ = try? archive.integers(name)
        _ = Checkpoint.stageState(String(name.prefix { $0 != "/" }), in: archive)
    }
    // A checkpoint that decodes must also re-encode to bytes that decode the same way.
    let again = try? SafeTensorsArchive(decoding: archive.encoded(), source: "fuzz.safetensors (re-encoded)")
    precondition(again?.names == archive.names, "re-encoding changed the entries")
    return 0
}
