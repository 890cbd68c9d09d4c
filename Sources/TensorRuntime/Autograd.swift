/// The record of one operation: its inputs and the rule that maps the output's gradient to theirs.
///
/// `backward` receives the gradient of the output and a mask of which inputs need a gradient, and
/// returns one gradient per input (nil where not needed). Rules are written with tensor operations,
/// so when the backward pass itself is recorded (`createGraph`), gradients of gradients follow.
public final class GradFn: @unchecked Sendable {
    public let name: String
    public let inputs: [Tensor]
    let backward: (Tensor, [Bool]) throws -> [Tensor?]

    init(name: String, inputs: [Tensor], backward: @escaping (Tensor, [Bool]) throws -> [Tensor?]) {
        self.name = name
        self.inputs = inputs
        self.backward = backward
    }
}

extension Tensor {
    /// Attaches `backward` to `result` when gradients are being recorded and an input needs them.
    ///
    /// Every differentiable op ends with this call; `backward` sits beside the forward code.
    @inline(__always)
    public static func record(
        _ result: Tensor, _ name: String, _ inputs: [Tensor],
        backward: @escaping (Tensor, [Bool]) throws -> [Tensor?]
    ) -> Tensor {
        guard GradMode.isEnabled, inputs.contains(where: { $0.requiresGrad }) else { return result }
        result.requiresGrad = true
        result.gradFn = GradFn(name: name, inputs: inputs, backward: backward)
        return result
    }
}

/// Gradients of `root` with respect to each of `targets` (PyTorch's `torch.autograd.grad`).
///
/// Only the part of the graph between `root` and the targets is visited, and each backward rule is
/// told which of its inputs lead to a target, so no unwanted weight gradient is computed.
/// With `createGraph`, the backward pass is itself recorded and the results can be differentiated
/// again (gradient penalties). A target that `root` does not depend on gets a zero gradient.
///
/// `ready` is called with a target's index and gradient as soon as that gradient is final, while
/// the rest of the backward pass is still to run (a data-parallel run starts sending it then).
public func gradients(
    of root: Tensor, wrt targets: [Tensor], seed: Tensor? = nil, createGraph: Bool = false,
    ready: ((Int, Tensor) throws -> Void)? = nil
) throws -> [Tensor] {
    try Profiler.measure("gradients (graph walk)") {
        try gradientsUnprofiled(of: root, wrt: targets, seed: seed, createGraph: createGraph, ready: ready)
    }
}

private func gradientsUnprofiled(
    of root: Tensor, wrt targets: [Tensor], seed: Tensor?, createGraph: Bool,
    ready: ((Int, Tensor) throws -> Void)?
) throws -> [Tensor] {
    let targetIDs = Set(targets.map(ObjectIdentifier.init))
    let order = topologicalOrder(from: root)

    // leads[t]: t is a target or some input of t's op leads to a target.
    var leads = Set<ObjectIdentifier>()
    for t in order {
        let id = ObjectIdentifier(t)
        if targetIDs.contains(id) {
            leads.insert(id)
        } else if let fn = t.gradFn, fn.inputs.contains(where: { leads.contains(ObjectIdentifier($0)) }) {
            leads.insert(id)
        }
    }

    // For `ready`: the ops still to run backward that use each target. A target's gradient is
    // final when the last of them has run, which may be long before the walk reaches the target
    // itself (an op's first input is walked first, so a weight given first sits early in `order`).
    var targetIndices: [ObjectIdentifier: [Int]] = [:]
    var pendingUses: [ObjectIdentifier: Int] = [:]
    if ready != nil {
        for (i, t) in targets.enumerated() { targetIndices[ObjectIdentifier(t), default: []].append(i) }
        for t in order {
            guard let fn = t.gradFn else { continue }
            for iid in Set(fn.inputs.map(ObjectIdentifier.init)) where targetIndices[iid] != nil {
                pendingUses[iid, default: 0] += 1
            }
        }
    }

    var grads: [ObjectIdentifier: Tensor] = [:]
    if leads.contains(ObjectIdentifier(root)) {
        if let seed {
            guard seed.shape == root.shape else {
                throw TensorError.shapeMismatch("gradients(seed:)", root.shape, seed.shape)
            }
            grads[ObjectIdentifier(root)] = seed
        } else {
            grads[ObjectIdentifier(root)] = Tensor(repeating: 1, shape: root.shape)
        }
    }

    func report(_ iid: ObjectIdentifier, _ shape: [Int]) throws {
        guard let ready, let indices = targetIndices.removeValue(forKey: iid) else { return }
        let g = grads[iid] ?? Tensor(zeros: shape)
        for i in indices { try ready(i, g) }
    }

    try GradMode.with(enabled: createGraph) {
        for t in order.reversed() {
            let id = ObjectIdentifier(t)
            if let fn = t.gradFn, leads.contains(id), let g = grads[id] {
                let mask = fn.inputs.map { leads.contains(ObjectIdentifier($0)) && $0.requiresGrad }
                if mask.contains(true) {
                    let inputGrads = try Profiler.measure("backward " + fn.name) { try fn.backward(g, mask) }
                    for (input, ig) in zip(fn.inputs, inputGrads) {
                        guard let ig else { continue }
                        let iid = ObjectIdentifier(input)
                        guard leads.contains(iid) else { continue }
                        if let existing = grads[iid] {
                            grads[iid] = try Profiler.measure("gradient accumulation") { try existing + ig }
                        } else {
                            grads[iid] = ig
                        }
                    }
                }
                // A non-target intermediate's gradient is no longer needed once passed on.
                if !targetIDs.contains(id) { grads[id] = nil }
            }
            if ready != nil, let fn = t.gradFn {
                var counted = Set<ObjectIdentifier>()
                for input in fn.inputs {
                    let iid = ObjectIdentifier(input)
                    guard counted.insert(iid).inserted, let n = pendingUses[iid] else { continue }
                    if n == 1 {
                        pendingUses[iid] = nil
                        try report(iid, input.shape)
                    } else {
                        pendingUses[iid] = n - 1
                    }
                }
            }
        }
    }
    // Targets no op uses (the root itself, or tensors the root does not reach).
    for t in targets { try report(ObjectIdentifier(t), t.shape) }
    return targets.map { grads[ObjectIdentifier($0)] ?? Tensor(zeros: $0.shape) }
}

extension Tensor {
    /// Accumulates the gradient of this (scalar) tensor into `.grad` of every leaf that requires it.
    public func backward(createGraph: Bool = false) throws {
        let leaves = topologicalOrder(from: self).filter { $0.gradFn == nil && $0.requiresGrad }
        let gs = try gradients(of: self, wrt: leaves, createGraph: createGraph)
        for (leaf, g) in zip(leaves, gs) {
            if let existing = leaf.grad {
                leaf.grad = try GradMode.with(enabled: createGraph) { try existing + g }
            } else {
                leaf.grad = g
            }
        }
    }
}

/// Tensors reachable from `root` through recorded ops, inputs before the ops that use them.
///
/// Iterative, so deep graphs (long unrolled loops) do not overflow the stack.
func topologicalOrder(from root: Tensor) -> [Tensor] {
    var order: [Tensor] = []
    var visited = Set<ObjectIdentifier>()
    var stack: [(Tensor, Int)] = [(root, 0)]
    visited.insert(ObjectIdentifier(root))
    while let (t, next) = stack.popLast() {
        let inputs = t.gradFn?.inputs ?? []
        if next < inputs.count {
            stack.append((t, next + 1))
            let child = inputs[next]
            if child.requiresGrad, visited.insert(ObjectIdentifier(child)).inserted {
                stack.append((child, 0))
            }
        } else {
            order.append(t)
        }
    }
    return order
}
