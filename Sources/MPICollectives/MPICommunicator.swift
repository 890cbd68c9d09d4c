import CMPIShim
import Foundation
import TensorRuntime

/// A problem loading or calling MPI.
public struct MPIError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// `Communicator` over OpenMPI's `MPI_COMM_WORLD`, with libmpi opened at run time.
///
/// Nothing in the package links libmpi: `MPIEnvironment.communicator()` opens it with `dlopen`
/// only when the process was started by `mpirun` (OpenMPI puts `OMPI_COMM_WORLD_SIZE` in the
/// environment), so single-process use needs no MPI library. Errors keep OpenMPI's default
/// handler (errors are fatal), and `mpirun` ends every rank when one dies; waits also time out
/// (`timeout`) in case a rank hangs instead.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    public let timeout: Double
    private var finalized = false

    init(library: String, timeout: Double) throws {
        var error = [CChar](repeating: 0, count: 512)
        if gf_mpi_load(library, &error, error.count) != 0 {
            throw MPIError(message: "cannot open the MPI library \(library): \(Self.text(error)) (install openmpi-bin and libopenmpi-dev: make setup)")
        }
        var r: Int32 = 0, s: Int32 = 0, provided: Int32 = 0
        try Self.check(gf_mpi_init(&r, &s, &provided), "MPI_Init_thread")
        rank = Int(r)
        size = Int(s)
        self.timeout = timeout
    }

    /// A NUL-terminated C string in `buffer`.
    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func check(_ code: Int32, _ call: String) throws {
        guard code != 0 else { return }
        var text = [CChar](repeating: 0, count: 512)
        gf_mpi_error_string(code, &text, text.count)
        throw MPIError(message: "\(call) failed: \(Self.text(text))")
    }

    final class Request: CollectiveRequest {
        var handle: UnsafeMutableRawPointer?
        var done = false
        init() {}
        func test() throws -> Bool {
            if done { return true }
            var flag: Int32 = 0
            try MPICommunicator.check(gf_mpi_test(&handle, &flag), "MPI_Test")
            done = flag != 0
            return done
        }
    }

    static func op(_ op: ReductionOp) -> gf_mpi_op {
        switch op {
        case .sum: return GF_MPI_SUM
        case .max: return GF_MPI_MAX
        case .min: return GF_MPI_MIN
        }
    }

    public func startAllreduce(_ buffer: UnsafeMutableBufferPointer<Float>, _ op: ReductionOp) throws -> any CollectiveRequest {
        let r = Request()
        try Self.check(gf_mpi_iallreduce_float(buffer.baseAddress, Int32(buffer.count), Self.op(op), &r.handle), "MPI_Iallreduce")
        return r
    }

    public func startAllreduce(_ buffer: UnsafeMutableBufferPointer<Double>, _ op: ReductionOp) throws -> any CollectiveRequest {
        let r = Request()
        try Self.check(gf_mpi_iallreduce_double(buffer.baseAddress, Int32(buffer.count), Self.op(op), &r.handle), "MPI_Iallreduce")
        return r
    }

    public func startBarrier() throws -> any CollectiveRequest {
        let r = Request()
        try Self.check(gf_mpi_ibarrier(&r.handle), "MPI_Ibarrier")
        return r
    }

    /// Ends the MPI session; call once, after the last collective, on every rank.
    public func finalize() {
        if finalized { return }
        finalized = true
        _ = gf_mpi_finalize()
    }

    /// Ends every rank of the job at once (after an error on this one).
    public func abort(code: Int32 = 1) -> Never {
        _ = gf_mpi_abort(code)
        exit(code)
    }
}

/// How this process was started: alone, or as one rank of `mpirun`.
public enum MPIEnvironment {
    /// The ranks `mpirun` started, from OpenMPI's environment; nil outside `mpirun`.
    public static var launchedSize: Int? {
        ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"].flatMap(Int.init)
    }

    /// This process's rank among those `mpirun` started, from OpenMPI's environment; nil outside
    /// `mpirun`.
    public static var launchedRank: Int? {
        ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"].flatMap(Int.init)
    }

    /// The ranks `mpirun` started on this machine, from OpenMPI's environment; nil outside
    /// `mpirun`.
    public static var localSize: Int? {
        ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init)
    }

    /// An MPI communicator when launched by `mpirun`, otherwise one process alone (MPI untouched).
    ///
    /// `GANFLOW_MPI_LIBRARY` names another libmpi; `GANFLOW_MPI_TIMEOUT` is the seconds a
    /// collective may wait for the other ranks (default 300).
    public static func communicator() throws -> any Communicator {
        guard launchedSize != nil else { return SingleProcessCommunicator() }
        let env = ProcessInfo.processInfo.environment
        let timeout = env["GANFLOW_MPI_TIMEOUT"].flatMap(Double.init) ?? 300
        return try MPICommunicator(library: env["GANFLOW_MPI_LIBRARY"] ?? "libmpi.so.40", timeout: timeout)
    }
}
