import TensorRuntime

/// Why bf16 cannot run on this CPU (the probe's message, naming oneDNN's instruction set), or nil
/// when oneDNN has bf16 kernels here: bf16 tests are `.enabled(if: bf16Unavailable == nil, ...)`.
public let bf16Unavailable: String? = {
    do {
        try ComputePrecision.bf16.checkAvailable()
        return nil
    } catch {
        return "\(error)"
    }
}()
