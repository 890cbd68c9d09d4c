import TensorRuntime

extension SafeTensorsArchive {
    /// Adds every tensor of `state` (as F32) and every counter (as an I64 scalar), in name order.
    public mutating func add(_ state: OptimizerState) {
        for name in state.tensors.keys.sorted() { set(name, state.tensors[name]!) }
        for name in state.integers.keys.sorted() { set(name, integer: Int64(state.integers[name]!)) }
    }

    /// The entries named `<prefix>.…`: integer scalars as counters, everything else as tensors.
    public func optimizerState(prefix: String) throws -> OptimizerState {
        var state = OptimizerState()
        let scope = prefix.isEmpty ? "" : prefix + "."
        for name in names where name.hasPrefix(scope) {
            let entry = entry(name)!
            if entry.dtype == .i64 && entry.shape.isEmpty {
                state.integers[name] = Int(try integers(name)[0])
            } else {
                state.tensors[name] = try tensor(name)
            }
        }
        return state
    }
}
