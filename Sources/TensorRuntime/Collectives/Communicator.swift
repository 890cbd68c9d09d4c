#if canImport(Glibc)
import Glibc
#endif

/// The reduction an allreduce applies across ranks.
public enum ReductionOp: Sendable {
    case sum, max, min
}

/// A collective operation that was started and may not have finished.
public protocol CollectiveRequest: AnyObject {
    /// Whether the operation has completed; also lets the library make progress on it.
    func test() throws -> Bool
}

/// A collective operation that did not finish in time (another rank died or hangs).
public struct CollectiveTimeout: Error, CustomStringConvertible, Sendable {
    public var rank: Int
    public var operation: String
    public var seconds: Double
    public var description: String {
        "\(operation) did not complete within \(Int(seconds)) s; another rank has probably died or stopped (GANFLOW_MPI_TIMEOUT sets the limit)"
    }
}

/// The processes of a data-parallel run and the collective operations between them.
///
/// The runtime only sees this vocabulary; `MPICollectives` implements it over MPI, and a single
/// process uses `SingleProcessCommunicator`. Collectives must be started in the same order on
/// every rank. Buffers passed to a `start...` call must stay alive and untouched until the
/// request completes.
public protocol Communicator: AnyObject, Sendable {
    /// This process's index, 0 ..< size. Rank 0 writes files.
    var rank: Int { get }
    /// Processes in the run.
    var size: Int { get }
    /// Seconds a wait may take before it is treated as a failure of another rank.
    var timeout: Double { get }
    /// Starts an in-place allreduce of `buffer` over every rank.
    func startAllreduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ op: ReductionOp) throws -> any CollectiveRequest
    /// Starts an in-place allreduce of `buffer` over every rank.
    func startAllreduce(_ buffer: UnsafeMutableBufferPointer<Double>, _ op: ReductionOp) throws -> any CollectiveRequest
    /// Starts a barrier.
    func startBarrier() throws -> any CollectiveRequest
}

extension Communicator {
    /// Whether this process writes the run's files.
    public var isLeader: Bool { rank == 0 }

    /// Waits for every request, polling (MPI makes progress only inside its calls) and sleeping
    /// a little between polls so that oversubscribed ranks leave the core to each other. Throws
    /// `CollectiveTimeout` after `timeout` seconds (the communicator's unless `limit` is given).
    public func wait(_ requests: [any CollectiveRequest], operation: String = "allreduce", limit: Double? = nil) throws {
        let timeout = limit ?? self.timeout
        var open = requests
        let start = monotonicSeconds()
        var polls = 0
        while true {
            open = try open.filter { try !$0.test() }
            if open.isEmpty { return }
            polls += 1
            if polls < 64 { continue }
            if monotonicSeconds() - start > timeout {
                throw CollectiveTimeout(rank: rank, operation: operation, seconds: timeout)
            }
            usleep(polls < 1024 ? 20 : 200)
        }
    }

    /// Sums (or takes the max or min of) `values` over every rank, in place.
    public func allreduce(_ values: inout [Double], _ op: ReductionOp = .sum, operation: String = "allreduce") throws {
        if size == 1 || values.isEmpty { return }
        try values.withUnsafeMutableBufferPointer { b in
            try wait([startAllreduce(b, op)], operation: operation)
        }
    }

    /// Sums `values` over every rank, in place.
    public func allreduce(_ values: UnsafeMutableBufferPointer<Float>, _ op: ReductionOp = .sum) throws {
        if size == 1 || values.isEmpty { return }
        try wait([startAllreduce(values, op)])
    }

    /// Returns when every rank has called it; `limit` replaces the communicator's timeout (a
    /// rank that finished its share of independent work may wait long for the others).
    public func barrier(limit: Double? = nil) throws {
        if size == 1 { return }
        try wait([startBarrier()], operation: "barrier", limit: limit)
    }
}

/// Seconds on a monotonic clock.
func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// One process alone: every collective is the identity and completes at once.
public final class SingleProcessCommunicator: Communicator {
    public let rank = 0
    public let size = 1
    public let timeout = Double.infinity
    public init() {}

    final class Done: CollectiveRequest {
        func test() throws -> Bool { true }
    }

    public func startAllreduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ op: ReductionOp) throws -> any CollectiveRequest { Done() }
    public func startAllreduce(_ buffer: UnsafeMutableBufferPointer<Double>, _ op: ReductionOp) throws -> any CollectiveRequest { Done() }
    public func startBarrier() throws -> any CollectiveRequest { Done() }
}
