import Foundation
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

/// Data-parallel training under `mpirun`: N ranks at a global batch must end with the weights one
/// process ends with at that batch.
@Suite(.serialized) struct DistributedTrainingTests {
    static let pipeline = fixture("pipelines/distributed/dcgan32-sync.json")

    static var mpirun: String? {
        ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func train(ranks: Int, out: String, extra: [String] = []) throws -> (Int32, String) {
        let args = ["run", pipeline, "--out", out, "--threads", "1", "--no-tensorboard"] + extra
        if ranks == 1 { return try execute(ganflowExecutable, args) }
        let mpirun = try #require(Self.mpirun, "mpirun is missing: run make setup (it installs openmpi-bin)")
        return try execute(mpirun, ["--allow-run-as-root", "--oversubscribe", "-np", String(ranks), ganflowExecutable] + args)
    }

    /// The largest |a - b| over every tensor of two checkpoints (weights, running statistics,
    /// Adam moments), relative to 1 + |a|, and the name where it occurs.
    static func largestDifference(_ a: String, _ b: String) throws -> (Double, String) {
        let x = try SafeTensorsArchive(contentsOf: a), y = try SafeTensorsArchive(contentsOf: b)
        #expect(Set(x.names) == Set(y.names))
        var worst = (0.0, "")
        for name in x.names where x.entry(name)?.dtype == .f32 {
            let u = try x.tensor(name).scalars, v = try y.tensor(name).scalars
            #expect(u.count == v.count, "\(name)")
            for (p, q) in zip(u, v) {
                let d = Double(abs(p - q)) / (1 + Double(abs(p)))
                if d > worst.0 { worst = (d, name) }
            }
        }
        return worst
    }

    static func lastCheckpoint(_ dir: String) -> String {
        Checkpoint.list(in: dir).last ?? dir + "/checkpoints/none"
    }

    /// Relative tolerance on every checkpointed value after 3 steps (Adam divides by sqrt(v), so
    /// float rounding in a sum's order shows up at about 1e-6 here; a split that changed the
    /// mathematics, such as local batch statistics, differs by 1e-3 and more).
    static let tolerance = 1e-4

    /// CI installs OpenMPI (make setup) and fails these tests without it; elsewhere they are
    /// skipped, saying why.
    static let runnable = mpirun != nil || runningInCI

    @Test(.enabled(if: runnable, "mpirun is missing: run make setup (it installs openmpi-bin)"))
    func twoRanksWithSynchronizedBatchNormMatchOneProcess() throws {
        let root = NSTemporaryDirectory() + "ganflow-mpi-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (s1, out1) = try Self.train(ranks: 1, out: root + "/one")
        #expect(s1 == 0, "\(out1)")
        let (s2, out2) = try Self.train(ranks: 2, out: root + "/two")
        #expect(s2 == 0, "\(out2)")
        #expect(out2.contains("data-parallel on 2 ranks"), "\(out2)")
        // Rank 0's metrics and sinks take the core the waiting rank leaves (one thread each here).
        let side = "metrics and sinks on rank 0 with 2 threads while the others wait"
        #expect(out2.contains(side) == (ProcessInfo.processInfo.activeProcessorCount >= 2), "\(out2)")
        // Only rank 0 writes: one checkpoint, one metrics file, one summary.
        #expect(Checkpoint.list(in: root + "/two").map { ($0 as NSString).lastPathComponent } == ["step-00000003.safetensors"])
        let (d, name) = try Self.largestDifference(Self.lastCheckpoint(root + "/one"), Self.lastCheckpoint(root + "/two"))
        print("DistributedTrainingTests: largest relative difference 1 vs 2 ranks: \(d) (\(name))")
        #expect(d <= Self.tolerance, "largest difference \(d) at \(name)")

        // The control: with batch norm statistics local to each rank's half batch, the result
        // differs, so the comparison above can tell a split batch from a whole one.
        let (s3, out3) = try Self.train(ranks: 2, out: root + "/local", extra: ["--set", "distributed.syncBatchNorm=false"])
        #expect(s3 == 0, "\(out3)")
        let (local, _) = try Self.largestDifference(Self.lastCheckpoint(root + "/one"), Self.lastCheckpoint(root + "/local"))
        print("DistributedTrainingTests: largest relative difference with local batch norm: \(local)")
        #expect(local > 100 * Self.tolerance, "local batch norm should differ, found \(local)")
    }

    @Test(.enabled(if: runnable, "mpirun is missing: run make setup (it installs openmpi-bin)"))
    func aGlobalBatchThatDoesNotDivideIsRefusedNamingTheField() throws {
        let root = NSTemporaryDirectory() + "ganflow-mpi-odd-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (status, output) = try Self.train(ranks: 3, out: root, extra: ["--set", "data.batch=10", "--set", "z.batch=10"])
        #expect(status != 0)
        // Every problem once (rank 0 prints), each naming the file, its line and the field.
        let expected = [
            "error: \(Self.pipeline):11:24: $.stages.data.batch: the global batch 10 does not divide over 3 ranks (mpirun -np 3); use a multiple of 3",
            "error: \(Self.pipeline):12:56: $.stages.z.batch: the global batch 10 does not divide over 3 ranks (mpirun -np 3); use a multiple of 3",
        ]
        #expect(output.split(separator: "\n").filter { $0.hasPrefix("error:") }.map(String.init) == expected, "\(output)")
    }

    @Test(.enabled(if: runnable, "mpirun is missing: run make setup (it installs openmpi-bin)"))
    func allreduceBenchTimesTheRanks() throws {
        let mpirun = try #require(Self.mpirun, "mpirun is missing: run make setup (it installs openmpi-bin)")
        let (status, output) = try execute(mpirun, ["--allow-run-as-root", "--oversubscribe", "-np", "2", ganflowExecutable,
                                                    "allreduce-bench", "--sizes", "4,64", "--repeats", "2"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("ranks 2\n     KiB   median ms   algbw MB/s   busbw MB/s\n"), "\(output)")
        let rows = output.split(separator: "\n").filter { $0.split(separator: " ").first.map { ["4", "64"].contains($0) } == true }
        #expect(rows.count == 2, "\(output)")
    }

    /// `mpirun -np N ganflow compare`: variant i runs on rank i mod N as a whole single-process
    /// run, and rank 0 writes the page when every rank is done.
    @Test(.enabled(if: runnable, "mpirun is missing: run make setup (it installs openmpi-bin)"))
    func compareRunsOneVariantPerRank() throws {
        let mpirun = try #require(Self.mpirun, "mpirun is missing: run make setup (it installs openmpi-bin)")
        let root = temporaryDirectory("mpi-compare"), file = try RunOptionTests.pipeline(in: root)
        let (status, output) = try execute(mpirun, ["--allow-run-as-root", "--oversubscribe", "-np", "2", ganflowExecutable, "compare", file,
                                                    "--variant", "hinge:--set loss.type=loss.hinge", "--variant", "plain:",
                                                    "--variant", "fast:--set optD.lr=0.001", "--steps", "2", "--out", root + "/compare"])
        #expect(status == 0, "\(output)")
        for (name, rank) in [("hinge", 0), ("plain", 1), ("fast", 0)] {
            #expect(output.contains("== \(name) on rank \(rank): \(root)/compare/\(name)\n"), "\(output)")
        }
        #expect(output.contains("wrote \(root)/compare/compare.html"), "\(output)")
        // The variant of rank 1 is the run one process makes alone.
        let (alone, aloneOutput) = try execute(ganflowExecutable, ["run", file, "--steps", "2", "--out", root + "/alone", "--threads", "1"])
        #expect(alone == 0, "\(aloneOutput)")
        let plain = try RunOptionTests.weights(root + "/compare/plain"), hinge = try RunOptionTests.weights(root + "/compare/hinge")
        let single = try RunOptionTests.weights(root + "/alone")
        #expect(!plain.isEmpty && plain == single)
        #expect(hinge != plain)
    }

    /// Commands that do not train run on rank 0 alone under mpirun, with a note: one grid and one
    /// compare.html written, not one per rank.
    @Test(.enabled(if: runnable, "mpirun is missing: run make setup (it installs openmpi-bin)"))
    func commandsThatDoNotTrainRunOnRankZeroOnly() throws {
        let mpirun = try #require(Self.mpirun, "mpirun is missing: run make setup (it installs openmpi-bin)")
        let root = temporaryDirectory("mpi-rank0"), file = try RunOptionTests.pipeline(in: root)
        for name in ["a", "b"] {
            let (status, output) = try execute(ganflowExecutable, ["run", file, "--steps", "2", "--out", root + "/" + name, "--threads", "1"])
            #expect(status == 0, "\(output)")
        }
        let launch = ["--allow-run-as-root", "--oversubscribe", "-np", "3", ganflowExecutable]
        let (sampled, sampleOutput) = try execute(mpirun, launch + ["sample", root + "/a", "--count", "4", "--grid", "--out", root + "/grid"])
        #expect(sampled == 0, "\(sampleOutput)")
        let lines = sampleOutput.split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("wrote a grid of 4 samples") }.count == 1, "\(sampleOutput)")
        #expect(lines.filter { $0 == "note: ganflow sample runs in one process: it runs on rank 0 of mpirun's 3, and ranks 1-2 have nothing to do" }.count == 1,
                "\(sampleOutput)")
        #expect(FileManager.default.fileExists(atPath: root + "/grid/grid.png"))
        let (compared, compareOutput) = try execute(mpirun, launch + ["compare", root + "/a", root + "/b", "--out", root + "/cmp"])
        #expect(compared == 0, "\(compareOutput)")
        #expect(compareOutput.components(separatedBy: "wrote \(root)/cmp/compare.html").count == 2, "\(compareOutput)")
        #expect(compareOutput.contains("note: ganflow compare runs in one process"), "\(compareOutput)")
        // A bad input still fails, on rank 0, with status 1.
        let (failed, failOutput) = try execute(mpirun, launch + ["sample", root + "/missing", "--count", "4", "--out", root + "/none"])
        #expect(failed != 0, "\(failOutput)")
        #expect(failOutput.components(separatedBy: "error:").count == 2, "\(failOutput)")
    }
}
