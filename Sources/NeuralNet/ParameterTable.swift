import TensorRuntime

/// What Adam, RMSprop and SGD share: the parameter table, the step count, and the state that a
/// checkpoint saves and restores. Each subclass adds its hyperparameters and `step(gradients:)`.
public class SlotOptimizer {
    public internal(set) var stepCount = 0
    let table: ParameterTable

    init(table: ParameterTable) { self.table = table }

    public var parameters: [(name: String, tensor: Tensor)] { table.entries }

    /// Each parameter's factor on the learning rate (1 unless set): parameter `k` is updated at
    /// `learningRate * rateFactors[k]`, as if in a PyTorch parameter group of that rate. Schedules
    /// scale the base rate and so every group alike.
    public private(set) var rateFactors: [Double] = []

    /// Sets `rateFactors`: one finite factor of at least 0 per parameter.
    public func setRateFactors(_ factors: [Double]) throws {
        guard factors.count == table.entries.count else {
            throw OptimizerError("\(table.optimizer): expected \(table.entries.count) learning-rate factors, one per parameter, got \(factors.count)")
        }
        for (k, f) in factors.enumerated() {
            try checkHyperparameter(table.optimizer, "the learning-rate factor of '\(table.entries[k].name)'", f, atLeast: 0)
        }
        rateFactors = factors
    }

    /// The rate of parameter `k` for a base rate of `learningRate`.
    func rate(_ learningRate: Double, parameter k: Int) -> Double {
        rateFactors.isEmpty ? learningRate : learningRate * rateFactors[k]
    }

    public func exportState(prefix: String) -> OptimizerState { table.export(prefix: prefix, step: stepCount) }

    public func importState(_ state: OptimizerState, prefix: String) throws {
        stepCount = try table.importState(state, prefix: prefix)
    }

    public func resetState() {
        table.reset()
        stepCount = 0
    }
}

/// The parameters an optimizer updates and its per-element state, one flat buffer per slot.
///
/// Parameter `k` owns elements `offsets[k] ..< offsets[k] + count` of every slot buffer, so an
/// update is one pointer loop per parameter and export/import are plain copies.
final class ParameterTable {
    /// Used in error messages ("adam: ...").
    let optimizer: String
    let entries: [(name: String, tensor: Tensor)]
    let offsets: [Int]
    let total: Int
    let slotNames: [String]
    private let slots: [Tensor]

    init(_ parameters: [(name: String, tensor: Tensor)], slots slotNames: [String], optimizer: String) throws {
        self.optimizer = optimizer
        var names = Set<String>()
        var tensors = Set<ObjectIdentifier>()
        var offsets: [Int] = []
        var total = 0
        for (name, tensor) in parameters {
            guard names.insert(name).inserted else { throw OptimizerError("\(optimizer): parameter '\(name)' is listed twice") }
            guard tensors.insert(ObjectIdentifier(tensor)).inserted else {
                throw OptimizerError("\(optimizer): parameter '\(name)' is the same tensor as an earlier one")
            }
            precondition(tensor.isContiguous, "\(optimizer): parameter '\(name)' is not contiguous")
            offsets.append(total)
            total += tensor.count
        }
        self.entries = parameters
        self.offsets = offsets
        self.total = total
        self.slotNames = slotNames
        self.slots = slotNames.map { _ in Tensor(zeros: [total]) }
        // Between two updates a parameter's values do not change, so the convolution kernels keep
        // their copies of it in their own layouts (bf16, channel-blocked) and every forward and
        // backward kernel of a step after the first skips that reorder; `updateParameters` drops them.
        for (_, tensor) in parameters { tensor.keepLayoutCopies() }
    }

    /// Runs `write`, the optimizer's in-place update of the parameters, then drops the copies the
    /// kernels kept of them (`Tensor.keepLayoutCopies()`), which the update made stale.
    func updateParameters<T>(_ write: () throws -> T) rethrows -> T {
        defer { for (_, tensor) in entries { tensor.dropLayoutCopies() } }
        return try write()
    }

    /// The start of slot `index`'s flat buffer.
    func slot(_ index: Int) -> UnsafeMutablePointer<Float> { slots[index].data }

    /// Zeroes every slot.
    func reset() {
        for s in slots { s.data.update(repeating: 0, count: total) }
    }

    /// `gradients` checked against the parameters and made contiguous.
    func checked(_ gradients: [Tensor]) throws -> [Tensor] {
        guard gradients.count == entries.count else {
            throw OptimizerError("\(optimizer): \(gradients.count) gradients for \(entries.count) parameters")
        }
        return try zip(entries, gradients).map { entry, g in
            guard g.shape == entry.tensor.shape else {
                throw OptimizerError("\(optimizer): gradient for '\(entry.name)' has shape \(describe(g.shape)), but the parameter has shape \(describe(entry.tensor.shape))")
            }
            return g.isContiguous ? g : g.copy()
        }
    }

    private static func key(_ prefix: String, _ rest: String) -> String {
        prefix.isEmpty ? rest : prefix + "." + rest
    }

    /// Copies of the slots, one tensor per parameter and slot, and `step`.
    func export(prefix: String, step: Int) -> OptimizerState {
        var state = OptimizerState()
        for (s, slotName) in slotNames.enumerated() {
            for (k, entry) in entries.enumerated() {
                let t = Tensor(uninitialized: entry.tensor.shape)
                t.data.update(from: slot(s) + offsets[k], count: entry.tensor.count)
                state.tensors[Self.key(prefix, "\(entry.name).\(slotName)")] = t
            }
        }
        state.integers[Self.key(prefix, "step")] = step
        return state
    }

    /// Loads the slots from `state` and returns its step count, changing nothing unless all of
    /// it is present and well-formed.
    func importState(_ state: OptimizerState, prefix: String) throws -> Int {
        let stepKey = Self.key(prefix, "step")
        guard let step = state.integers[stepKey] else { throw OptimizerError("\(optimizer): state has no '\(stepKey)'") }
        guard step >= 0 else { throw OptimizerError("\(optimizer): '\(stepKey)' is \(step), expected a count >= 0") }
        var expected = Set<String>()
        var sources: [[Tensor]] = []
        for slotName in slotNames {
            var perParameter: [Tensor] = []
            for entry in entries {
                let key = Self.key(prefix, "\(entry.name).\(slotName)")
                expected.insert(key)
                guard let t = state.tensors[key] else { throw OptimizerError("\(optimizer): state has no '\(key)'") }
                guard t.shape == entry.tensor.shape else {
                    throw OptimizerError("\(optimizer): '\(key)' has shape \(describe(t.shape)), but parameter '\(entry.name)' has shape \(describe(entry.tensor.shape))")
                }
                perParameter.append(t)
            }
            sources.append(perParameter)
        }
        let scope = prefix.isEmpty ? "" : prefix + "."
        if let stray = state.tensors.keys.filter({ $0.hasPrefix(scope) && !expected.contains($0) }).sorted().first {
            throw OptimizerError("\(optimizer): state has '\(stray)', which matches no parameter and slot of this optimizer")
        }
        for (s, perParameter) in sources.enumerated() {
            for (k, t) in perParameter.enumerated() {
                let c = t.isContiguous ? t : t.copy()
                (slot(s) + offsets[k]).update(from: c.data, count: c.count)
            }
        }
        return step
    }
}
