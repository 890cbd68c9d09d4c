
/// Gradients of one loss averaged over every rank, allreduced in buckets while backward runs.
///
/// Parameters are grouped into buckets of about `bucketBytes`, last parameter first: backward
/// reaches the last layers first, so their bucket fills first. When every gradient of a bucket is
/// known it is copied into the bucket's flat buffer and a nonblocking allreduce starts; later
/// gradients are computed while it travels. After backward the remaining requests are waited
/// for and the sums divided by the rank count. Buckets are started in the same order on every
/// rank because the graph walk is deterministic.
public final class GradientAllreduce: @unchecked Sendable {
    struct Bucket {
        /// Indices into the parameter list, and each one's offset in the flat buffer.
        var members: [(index: Int, offset: Int)]
        var count: Int
    }

    public let communicator: any Communicator
    let shapes: [[Int]]
    let buckets: [Bucket]
    /// For each parameter, its bucket and offset.
    let place: [(bucket: Int, offset: Int)]
    /// Label in the statistics (the optimizer stage's id).
    let label: String

    public init(shapes: [[Int]], communicator: any Communicator, bucketBytes: Int, label: String) {
        self.shapes = shapes
        self.communicator = communicator
        self.label = label
        var buckets: [Bucket] = []
        var place = [(bucket: Int, offset: Int)](repeating: (0, 0), count: shapes.count)
        var current = Bucket(members: [], count: 0)
        let limit = max(bucketBytes / 4, 1)
        for i in shapes.indices.reversed() {
            let n = shapes[i].reduce(1, *)
            if current.count > 0 && current.count + n > limit {
                buckets.append(current)
                current = Bucket(members: [], count: 0)
            }
            place[i] = (buckets.count, current.count)
            current.members.append((i, current.count))
            current.count += n
        }
        if !current.members.isEmpty { buckets.append(current) }
        self.buckets = buckets
        self.place = place
    }

    /// Elements in each bucket, in the order they are sent.
    public var bucketSizes: [Int] { buckets.map(\.count) }

    /// The gradients of `loss` with respect to `targets`, averaged over every rank.
    public func gradients(of loss: Tensor, wrt targets: [Tensor]) throws -> [Tensor] {
        precondition(targets.count == shapes.count, "GradientAllreduce: \(targets.count) targets for \(shapes.count) shapes")
        let storages = buckets.map { Storage(count: $0.count) }
        var remaining = buckets.map(\.members.count)
        var requests: [(any CollectiveRequest)?] = Array(repeating: nil, count: buckets.count)
        var open: [any CollectiveRequest] = []
        let comm = communicator
        let started = monotonicSeconds()
        var bytesSent = 0

        func start(_ b: Int) throws {
            let buffer = UnsafeMutableBufferPointer(start: storages[b].pointer, count: buckets[b].count)
            let r = try comm.startAllreduce(buffer, .sum)
            requests[b] = r
            open.append(r)
            bytesSent += buckets[b].count * 4
        }

        _ = try TensorRuntime.gradients(of: loss, wrt: targets, ready: { index, g in
            let (b, offset) = self.place[index]
            let c = g.contiguousData()
            (storages[b].pointer + offset).update(from: c.data, count: c.count)
            remaining[b] -= 1
            if remaining[b] == 0 { try start(b) }
            // Nonblocking collectives advance only inside MPI calls: poke the ones in flight.
            open = try open.filter { try !$0.test() }
        })
        for b in buckets.indices where requests[b] == nil { try start(b) }
        let backwardDone = monotonicSeconds()
        try comm.wait(open, operation: "gradient allreduce (\(label))")
        let finished = monotonicSeconds()

        let scale = 1 / Float(comm.size)
        var result: [Tensor] = []
        result.reserveCapacity(targets.count)
        for (i, shape) in shapes.enumerated() {
            let (b, offset) = place[i]
            result.append(Tensor(storage: storages[b], shape: shape, offset: offset))
        }
        for (b, s) in storages.enumerated() {
            let p = s.pointer
            for j in 0..<buckets[b].count { p[j] *= scale }
        }
        CollectiveStatistics.shared.record(label: label, backward: backwardDone - started,
                                           exposedWait: finished - backwardDone, bytes: bytesSent,
                                           buckets: buckets.count)
        return result
    }
}

/// What the gradient allreduces of a run cost: per optimizer, the steps, the seconds of backward
/// (with the allreduces started inside it), the seconds waited after backward (the part not
/// overlapped) and the bytes sent.
public final class CollectiveStatistics: Sendable {
    public struct Entry: Sendable {
        public var steps = 0
        public var backwardSeconds = 0.0
        public var exposedWaitSeconds = 0.0
        public var bytes = 0
        public var buckets = 0
    }

    public static let shared = CollectiveStatistics()
    private let entries = Locked<[String: Entry]>([:])

    func record(label: String, backward: Double, exposedWait: Double, bytes: Int, buckets: Int) {
        entries.withLock { e in
            var x = e[label] ?? Entry()
            x.steps += 1
            x.backwardSeconds += backward
            x.exposedWaitSeconds += exposedWait
            x.bytes = bytes
            x.buckets = buckets
            e[label] = x
        }
    }

    /// Per label, sorted by label.
    public var snapshot: [(String, Entry)] { entries.withLock { $0.sorted { $0.key < $1.key } } }
}
