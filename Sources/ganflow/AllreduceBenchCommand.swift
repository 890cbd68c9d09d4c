import ArgumentParser
import Foundation
import MPICollectives
import TensorRuntime

/// Times MPI allreduce of float buffers between the ranks of `mpirun`, for the scaling model in
/// the README.
struct AllreduceBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce-bench",
        abstract: "Time the gradient allreduce between mpirun's ranks (mpirun -np N ganflow allreduce-bench).",
        discussion: """
            For each size, rank 0 prints the median time of an in-place float sum over every rank,
            the algorithm bandwidth (bytes / time) and the bus bandwidth (2 (N - 1) / N bytes /
            time, what a ring allreduce moves through each link).
            """)

    @Option(help: "Buffer sizes in KiB, comma-separated.")
    var sizes: String = "16,256,1024,4096,16384"

    @Option(help: "Timed repetitions per size (after 2 untimed).")
    var repeats: Int = 20

    func validate() throws {
        if repeats < 1 { throw ValidationError("--repeats must be at least 1") }
        if parsedSizes() == nil { throw ValidationError("--sizes expects positive integers separated by commas, got '\(sizes)'") }
    }

    func parsedSizes() -> [Int]? {
        let values = sizes.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        return values.map { $0! }
    }

    func run() throws {
        let comm = try MPIEnvironment.communicator()
        defer { (comm as? MPICommunicator)?.finalize() }
        if comm.size == 1 && comm.isLeader {
            print("one process: start with mpirun -np N to measure an allreduce")
        }
        if comm.isLeader { print("ranks \(comm.size)\n     KiB   median ms   algbw MB/s   busbw MB/s") }
        for kib in parsedSizes()! {
            let count = kib * 256
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            defer { buffer.deallocate() }
            buffer.initialize(repeating: 1)
            var times: [Double] = []
            for i in 0..<(repeats + 2) {
                try comm.barrier()
                let start = Date()
                try comm.allreduce(buffer)
                if i >= 2 { times.append(Date().timeIntervalSince(start)) }
            }
            // The slowest rank's time is the collective's.
            var slowest = times
            try comm.allreduce(&slowest, .max)
            let median = slowest.sorted()[slowest.count / 2]
            let bytes = Double(count * 4)
            let n = Double(comm.size)
            if comm.isLeader {
                print(String(format: "%8d %11.3f %12.1f %12.1f", kib, median * 1000, bytes / median / 1e6,
                             2 * (n - 1) / n * bytes / median / 1e6))
            }
        }
    }
}

extension AllreduceBenchCommand: RanksWorkTogether {
    var usesEveryRank: Bool { true }
}
