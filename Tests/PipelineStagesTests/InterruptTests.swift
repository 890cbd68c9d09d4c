import Foundation
import PipelineGraph
import TensorRuntime
import Testing

/// Ctrl-C as a user sends it: SIGINT to a `ganflow run` process at random moments.
///
/// The pipeline is the shipped `dcgan-fashion.json` on the fixture images, narrowed (width 16) and
/// with a grid, a TensorBoard image and a checkpoint due often, so signals land in the training
/// phases, the sinks, the checkpoint write and the release of memory after it.
@Suite(.serialized) struct InterruptTests {
    static let steps = 4

    static var arguments: [String] {
        let images = fixture("idx/t10k-256-images-idx3-ubyte.gz"), labels = fixture("idx/t10k-256-labels-idx1-ubyte.gz")
        return ["run", repositoryRoot + "/pipelines/dcgan-fashion.json", "--steps", String(steps), "--threads", "1",
                "--set", "data.images=\(images)", "--set", "test.images=\(images)", "--set", "test.labels=\(labels)",
                "--set", "features.count=32", "--set", "G.width=16", "--set", "D.width=16",
                "--set", "checkpoint.every=2", "--set", "checkpoint.keep=10", "--set", "log.every=1",
                "--set", "grid.every=1", "--set", "tb.every=1"]
    }

    /// A `ganflow run` in the background, its merged output gathered as it comes.
    final class RunningProcess: @unchecked Sendable {
        let process = Process()
        private let output = Locked(Data())

        init(_ arguments: [String]) throws {
            process.executableURL = URL(fileURLWithPath: ganflowExecutable)
            process.arguments = arguments
            var env = ProcessInfo.processInfo.environment
            env["OMP_NUM_THREADS"] = "1"
            process.environment = env
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            pipe.fileHandleForReading.readabilityHandler = { [output] handle in
                let data = handle.availableData
                output.withLock { $0.append(data) }
            }
            try process.run()
        }

        var text: String { output.withLock { String(decoding: $0, as: UTF8.self) } }

        /// Waits until the output contains `marker`; false if the process ended first.
        func wait(for marker: String) -> Bool {
            while !text.contains(marker) {
                if !process.isRunning { return text.contains(marker) }
                usleep(2_000)
            }
            return true
        }

        func interrupt() { send(SIGINT) }

        func send(_ signal: Int32) { kill(process.processIdentifier, signal) }

        /// Waits for the end; returns the exit status and the whole output.
        func finish() -> (Int32, String) {
            process.waitUntilExit()
            // The last bytes may still be in the pipe.
            usleep(50_000)
            return (process.terminationStatus, text)
        }
    }

    static func temporaries(in dir: String) -> [String] {
        [dir, dir + "/checkpoints", dir + "/samples"].flatMap { d in
            ((try? FileManager.default.contentsOfDirectory(atPath: d)) ?? []).filter { $0.contains(".tmp-") }
        }
    }

    static func newestCheckpointStep(_ dir: String) -> Int? {
        Checkpoint.list(in: dir).last.flatMap { Int(($0 as NSString).lastPathComponent.filter(\.isNumber)) }
    }

    @Test func theFirstCtrlCCheckpointsTheLastStepAndResumingMatchesAnUninterruptedRun() throws {
        let root = temporaryDirectory("interrupt")
        let (status, output) = try execute(ganflowExecutable, Self.arguments + ["--out", root + "/straight"])
        #expect(status == 0, "\(output)")
        let reference = try Data(contentsOf: URL(fileURLWithPath: root + "/straight/checkpoints/step-00000004.safetensors"))

        // Each trial: after the progress line of step `after`, wait `delay` ms and send SIGINT. A
        // delay of 0 lands in the work after the line (the stop check, the checkpoint write of an
        // even step, malloc_trim); longer ones land in the next step's phases and sinks.
        var rng = SystemRandomNumberGenerator()
        let trials = [(after: 1, delay: 0), (after: Int.random(in: 1...2, using: &rng), delay: Int.random(in: 1...1000, using: &rng))]
        for (n, trial) in trials.enumerated() {
            // On a quiet machine the signal may come after the last step has begun (the run then
            // finishes it and ends normally, status 0) or after the run: then the trial is repeated
            // with a shorter delay, down to none after step 1 (3 steps ahead), which a run that
            // ignored SIGINT would still finish, failing the checks below.
            var trial = trial, attempt = 0, dir = "", status: Int32 = 0, output = ""
            while true {
                dir = root + "/trial-\(n)-\(attempt)"
                let run = try RunningProcess(Self.arguments + ["--out", dir])
                #expect(run.wait(for: "step \(trial.after)/\(Self.steps) "), "\(run.text)")
                usleep(UInt32(trial.delay) * 1000)
                run.interrupt()
                (status, output) = run.finish()
                let finishedFirst = status == 0 && output.contains("finished at step \(Self.steps)/\(Self.steps) ")
                guard finishedFirst, trial.delay > 0 || trial.after > 1 else { break }
                print("InterruptTests: the run finished its last step despite SIGINT after step \(trial.after) + \(trial.delay) ms; again with less")
                trial = (after: 1, delay: trial.delay / 4)
                attempt += 1
            }
            let context = "SIGINT after step \(trial.after) + \(trial.delay) ms:\n\(output)"
            // The documented exit status of an interrupted run, and what the user reads.
            #expect(status == 130, "\(context)")
            #expect(output.contains("interrupt: finishing this step and writing a checkpoint (Ctrl-C again to quit at once)"), "\(context)")
            let stopped = output.split(separator: "\n").first { $0.hasPrefix("stopped at step ") }
            let lastStep = stopped.flatMap { Int($0.dropFirst("stopped at step ".count).prefix { $0.isNumber }) }
            #expect(lastStep != nil && lastStep! >= trial.after && lastStep! < Self.steps, "\(context)")
            #expect(output.contains("resume with: ganflow run "), "\(context)")
            // The checkpoint of the last finished step, whatever the moment the signal came.
            #expect(Self.newestCheckpointStep(dir) == lastStep, "\(context)")
            #expect(Self.temporaries(in: dir).isEmpty, "\(context)")

            let (resumed, resumedOutput) = try execute(ganflowExecutable, Self.arguments + ["--out", dir, "--resume"])
            #expect(resumed == 0, "\(resumedOutput)")
            #expect(resumedOutput.contains("resuming from \(dir)/checkpoints/step-0000000\(lastStep ?? 0).safetensors"), "\(resumedOutput)")
            let final = try Data(contentsOf: URL(fileURLWithPath: dir + "/checkpoints/step-00000004.safetensors"))
            // Every weight, running statistic, Adam moment and loader position, bit for bit.
            #expect(final == reference, "trial \(n): the resumed run's last checkpoint differs from the uninterrupted run's")
        }
    }

    @Test func aSecondCtrlCExitsAtOnceLeavingNoTemporaryFile() throws {
        let root = temporaryDirectory("interrupt-twice")
        // The first right after step 3's progress line, the second as soon as the first is
        // acknowledged (two signals sent together reach a process as one), so it lands in the
        // checkpoint write the first one asked for, or just after it.
        let dir = root + "/run"
        let run = try RunningProcess(Self.arguments + ["--out", dir])
        #expect(run.wait(for: "step 3/\(Self.steps) "), "\(run.text)")
        run.interrupt()
        #expect(run.wait(for: "interrupt: finishing this step"), "\(run.text)")
        run.interrupt()
        let (status, output) = run.finish()
        #expect(status == 130, "\(output)")
        #expect(output.contains("second interrupt: exiting now"), "\(output)")
        // At once: no summary, no report, nothing after the signal.
        #expect(!output.contains("stopped at step"), "\(output)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/summary.json"))
        #expect(Self.temporaries(in: dir).isEmpty, "left behind: \(Self.temporaries(in: dir))")
        // The checkpoints there (step 2's, perhaps step 3's) are whole: each passes its checksum.
        #expect(Self.newestCheckpointStep(dir) ?? 0 >= 2)
        for path in Checkpoint.list(in: dir) { _ = try SafeTensorsArchive(contentsOf: path) }
    }

    /// `--time-limit`: the run stops after the step that finds the time up, as the first Ctrl-C
    /// does but with status 0 and the last step's side stages (final metrics, grid), and resumes.
    @Test func aTimeLimitStopsWithACheckpointFinalMetricsAndAReportThatResumes() throws {
        let dir = temporaryDirectory("time-limit") + "/run"
        var arguments = Self.arguments
        arguments[arguments.firstIndex(of: "--steps")! + 1] = "100000"
        arguments += ["--set", "grid.every=1000", "--set", "tb.every=1000", "--set", "checkpoint.every=1000"]
        let (status, output) = try execute(ganflowExecutable, arguments + ["--out", dir, "--time-limit", "3s"])
        #expect(status == 0, "\(output)")
        let stopped = output.split(separator: "\n").first { $0.hasPrefix("stopped at step ") }
        let lastStep = stopped.flatMap { Int($0.dropFirst("stopped at step ".count).prefix { $0.isNumber }) } ?? 0
        #expect(stopped?.contains("/100000 at the time limit (3s) in ") == true, "\(output)")
        #expect(lastStep >= 1 && lastStep < 100_000, "\(output)")
        // The progress log shows the last step, with the time left to the limit rather than to step 100,000.
        let lastLine = output.split(separator: "\n").first { $0.hasPrefix("step \(lastStep)/100000 ") }
        #expect(lastLine?.contains(" steps/s ETA 0s (time limit)") == true, "\(output)")
        #expect(output.contains("continue with: ganflow run \(repositoryRoot)/pipelines/dcgan-fashion.json --out \(dir) --resume"), "\(output)")
        #expect(Self.newestCheckpointStep(dir) == lastStep)
        // The last step's metrics and grid ran, as at the end of the schedule.
        #expect(output.contains("fid.distance="), "\(output)")
        #expect(FileManager.default.fileExists(atPath: dir + "/samples/step-\(String(format: "%08d", lastStep)).png"))
        #expect(FileManager.default.fileExists(atPath: dir + "/report.html"))
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/summary.json"))) as? [String: Any]
        #expect(summary?["timeLimitReached"] as? Bool == true && summary?["interrupted"] as? Bool == false && summary?["timeLimit"] as? String == "3s")

        var more = Self.arguments
        more[more.firstIndex(of: "--steps")! + 1] = String(lastStep + 1)
        let (resumed, resumedOutput) = try execute(ganflowExecutable, more + ["--out", dir, "--resume"])
        #expect(resumed == 0, "\(resumedOutput)")
        #expect(resumedOutput.contains("resuming from \(dir)/checkpoints/step-\(String(format: "%08d", lastStep)).safetensors"), "\(resumedOutput)")
        #expect(resumedOutput.contains("finished at step \(lastStep + 1)/\(lastStep + 1) in "), "\(resumedOutput)")
    }

    @Test func aMalformedTimeLimitFailsWithStatus1NamingIt() throws {
        let pipeline = repositoryRoot + "/pipelines/mlp-gan-fashion.json"
        let (status, output) = try execute(ganflowExecutable, ["run", pipeline, "--time-limit", "20"])
        #expect(status == 1 && output == "error: --time-limit '20': a number needs a unit (20s, 20m or 20h); write a duration such as 90s, 20m or 1h30m\n", "\(output)")
        let (c, cOutput) = try execute(ganflowExecutable, ["compare", pipeline, "--variant", "a:", "--variant", "b:", "--time-limit", "1h30"])
        #expect(c == 1 && cOutput == "error: --time-limit '1h30': '30' has no unit; write a duration such as 90s, 20m or 1h30m\n", "\(cOutput)")
    }

    /// `compare --time-limit`: every variant gets the same wall-clock and stops with its summary.
    @Test func compareGivesEveryVariantTheSameTimeLimit() throws {
        let root = temporaryDirectory("compare-time-limit"), images = fixture("idx/t10k-256-images-idx3-ubyte.gz")
        let (status, output) = try execute(ganflowExecutable, [
            "compare", repositoryRoot + "/pipelines/mlp-gan-fashion.json", "--steps", "100000", "--time-limit", "2s", "--out", root,
            "--variant", "a:--set data.images=\(images)", "--variant", "b:--set data.images=\(images) --set loss.type=loss.hinge"])
        #expect(status == 0, "\(output)")
        for name in ["a", "b"] {
            let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/\(name)/summary.json"))) as? [String: Any]
            #expect(summary?["timeLimitReached"] as? Bool == true && (summary?["lastStep"] as? Int ?? 0) < 100_000, "\(name): \(String(describing: summary))")
        }
        #expect(FileManager.default.fileExists(atPath: root + "/compare.html"))
    }
}
