
/// What a cached primitive computes.
enum PrimitiveKind: String, Hashable, Sendable {
    case convForward = "conv.forward"
    case convBackwardData = "conv.backward_data"
    case convBackwardWeights = "conv.backward_weights"
    case convBackwardWeightsAsForward = "conv.backward_weights_as_forward"
    case convBackwardDataPhase = "conv.backward_data_phase"
    case matmul = "matmul"
    case eltwise = "eltwise"
    case pooling = "pooling"
}

/// Identifies a primitive: its kind, every number that shapes it (dimensions, strides,
/// padding, dilation, transposes, whether a bias is fused) and the precision it computes in.
struct PrimitiveKey: Hashable, Sendable, CustomStringConvertible {
    let kind: PrimitiveKind
    let values: [Int]
    /// The precision asked for (a bf16 key may hold an fp32 primitive where oneDNN has no bf16
    /// kernel for the shape).
    var precision: ComputePrecision = .fp32
    /// Human-readable parameters for diagnostics; not part of the identity.
    let detail: String

    init(kind: PrimitiveKind, values: [Int], precision: ComputePrecision = .fp32, detail: String) {
        self.kind = kind
        self.values = values
        self.precision = precision
        self.detail = detail
    }

    static func == (a: PrimitiveKey, b: PrimitiveKey) -> Bool {
        a.kind == b.kind && a.values == b.values && a.precision == b.precision
    }
    func hash(into h: inout Hasher) {
        h.combine(kind)
        h.combine(values)
        h.combine(precision)
    }

    var description: String { "\(kind.rawValue) \(detail)" + (precision == .fp32 ? "" : " [\(precision.rawValue)]") }
}

/// Primitives created so far, one per key, shared by all threads.
///
/// Creating a primitive (JIT code generation) can take milliseconds, so it happens outside the
/// lock; when two threads race for the same key, the first to finish wins and the other's copy
/// is dropped.
final class PrimitiveCache: Sendable {
    static let shared = PrimitiveCache()

    private let entries = Locked<[PrimitiveKey: DNNLPrimitive]>([:])

    /// `threads` overrides `Runtime.threads` for this primitive (1 for work too small to split).
    func primitive(for key: PrimitiveKey, threads: Int? = nil, create: () throws -> DNNLPrimitive) throws -> DNNLPrimitive {
        // oneDNN fixes a primitive's thread count when it is created (its work split depends on
        // it), so the count is part of the key and applied before creating and executing.
        Runtime.applyToCurrentThread()
        let count = threads ?? Runtime.threads
        let key = PrimitiveKey(kind: key.kind, values: key.values + [count], precision: key.precision, detail: key.detail)
        if let hit = entries.withLock({ $0[key] }) { return hit }
        // The primitive records the thread count it was created with and runs with it.
        let made = try Runtime.withOpenMPThreads(count) { try create() }
        let (winner, inserted) = entries.withLock { table -> (DNNLPrimitive, Bool) in
            if let existing = table[key] { return (existing, false) }
            table[key] = made
            return (made, true)
        }
        if inserted { DNNLDiagnostics.record(key: key, primitive: made) }
        return winner
    }

    var count: Int { entries.withLock { $0.count } }
}
