import Foundation
import TensorRuntime

/// Ranks as threads of one process, for testing data-parallel code without MPI.
///
/// Every collective is matched by its sequence number on each rank (as MPI matches them by
/// order); the last rank to arrive reduces every rank's buffer and writes the result into each.
public final class ThreadedCommunicatorGroup: Sendable {
    enum Buffer: @unchecked Sendable {
        case floats(UnsafeMutableBufferPointer<Float>)
        case doubles(UnsafeMutableBufferPointer<Double>)
        case none
    }

    struct Collective {
        var buffers: [Buffer]
        var arrived = 0
        var done = false
    }

    let size: Int
    private let collectives = Locked<[Int: Collective]>([:])
    /// One communicator per rank; give each to its own thread.
    public let ranks: [ThreadedCommunicator]

    public init(size: Int) {
        self.size = size
        var made: [ThreadedCommunicator] = []
        let group = Unchecked<ThreadedCommunicatorGroup?>(nil)
        for r in 0..<size { made.append(ThreadedCommunicator(rank: r, size: size, group: group)) }
        ranks = made
        group.value = self
    }

    func arrive(_ sequence: Int, rank: Int, _ buffer: Buffer, _ op: ReductionOp) {
        collectives.withLock { all in
            var c = all[sequence] ?? Collective(buffers: Array(repeating: .none, count: size))
            c.buffers[rank] = buffer
            c.arrived += 1
            if c.arrived == size {
                Self.reduce(c.buffers, op)
                c.done = true
            }
            all[sequence] = c
        }
    }

    func isDone(_ sequence: Int) -> Bool { collectives.withLock { $0[sequence]?.done ?? false } }

    static func reduce(_ buffers: [Buffer], _ op: ReductionOp) {
        func combine(_ a: Double, _ b: Double) -> Double {
            switch op {
            case .sum: return a + b
            case .max: return Swift.max(a, b)
            case .min: return Swift.min(a, b)
            }
        }
        switch buffers.first {
        case .floats(let first)?:
            for j in 0..<first.count {
                var acc: Double?
                for case .floats(let b) in buffers { acc = acc.map { combine($0, Double(b[j])) } ?? Double(b[j]) }
                for case .floats(let b) in buffers { b[j] = Float(acc!) }
            }
        case .doubles(let first)?:
            for j in 0..<first.count {
                var acc: Double?
                for case .doubles(let b) in buffers { acc = acc.map { combine($0, b[j]) } ?? b[j] }
                for case .doubles(let b) in buffers { b[j] = acc! }
            }
        default:
            break
        }
    }

    /// Runs `body(rank communicator)` on one thread per rank and returns the results in rank order.
    public func run<T: Sendable>(_ body: @escaping @Sendable (ThreadedCommunicator) throws -> T) throws -> [T] {
        let results = Locked<[Int: Result<T, Error>]>([:])
        let finished = DispatchGroup()
        for comm in ranks {
            finished.enter()
            // A thread per rank: ranks block in collectives, so they must not share a pool thread.
            let t = Thread {
                let result = Result { try body(comm) }
                results.withLock { $0[comm.rank] = result }
                finished.leave()
            }
            t.start()
        }
        finished.wait()
        let all = results.withLock { $0 }
        return try (0..<size).map { try all[$0]!.get() }
    }
}

/// A mutable box shared before the group exists.
final class Unchecked<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

/// One rank of a `ThreadedCommunicatorGroup`.
public final class ThreadedCommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    public let timeout = 60.0
    let group: Unchecked<ThreadedCommunicatorGroup?>
    var sequence = 0

    init(rank: Int, size: Int, group: Unchecked<ThreadedCommunicatorGroup?>) {
        self.rank = rank
        self.size = size
        self.group = group
    }

    final class Request: CollectiveRequest {
        let group: ThreadedCommunicatorGroup
        let sequence: Int
        init(_ group: ThreadedCommunicatorGroup, _ sequence: Int) {
            self.group = group
            self.sequence = sequence
        }
        func test() throws -> Bool { group.isDone(sequence) }
    }

    func start(_ buffer: ThreadedCommunicatorGroup.Buffer, _ op: ReductionOp) -> any CollectiveRequest {
        let g = group.value!
        let s = sequence
        sequence += 1
        g.arrive(s, rank: rank, buffer, op)
        return Request(g, s)
    }

    public func startAllreduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ op: ReductionOp) throws -> any CollectiveRequest {
        start(.floats(buffer), op)
    }
    public func startAllreduce(_ buffer: UnsafeMutableBufferPointer<Double>, _ op: ReductionOp) throws -> any CollectiveRequest {
        start(.doubles(buffer), op)
    }
    public func startBarrier() throws -> any CollectiveRequest { start(.none, .sum) }
}
