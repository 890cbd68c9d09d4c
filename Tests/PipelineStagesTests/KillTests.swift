import Foundation
import PipelineGraph
import TensorRuntime
import Testing

/// SIGKILL, as a crash or an out-of-memory kill ends a run: no handler runs, a checkpoint or a
/// sample grid may be half written. The CI-sized version of `Scripts/killtest.sh` (which does 50).
///
/// A run of `Fixtures/pipelines/faults/killtest.json` (the MLP GAN on the fixture images, a
/// checkpoint every other step, a grid every third) is killed a handful of times at random
/// moments, each time resumed with `--resume`; the last resume runs to the end, whose checkpoint
/// must be byte-identical to an uninterrupted run's.
@Suite(.serialized) struct KillTests {
    static let kills = 5

    static func arguments(dir: String, steps: Int) -> [String] {
        ["run", fixture("pipelines/faults/killtest.json"), "--out", dir, "--threads", "1", "--no-tensorboard", "--steps", String(steps)]
    }

    static func checkpoint(_ dir: String, step: Int) -> String { dir + "/checkpoints/" + Checkpoint.fileName(step: step) }

    @Test func killedAtRandomMomentsAndResumedEachTimeItEndsAsAnUninterruptedRun() throws {
        let root = temporaryDirectory("kill"), dir = root + "/killed"
        var rng = SystemRandomNumberGenerator()
        var moments: [String] = [], leftPartlyWritten = 0
        for i in 0..<Self.kills {
            let newest = InterruptTests.newestCheckpointStep(dir) ?? 0
            // The killed runs have no end in sight, so every kill lands in a running process.
            let run = try InterruptTests.RunningProcess(Self.arguments(dir: dir, steps: 1_000_000) + ["--resume"])
            let moment: String
            if i == 0 {
                // During start-up: parsing, building the pipeline, opening the data.
                let delay = Int.random(in: 0..<300, using: &rng)
                usleep(UInt32(delay) * 1000)
                moment = "\(delay) ms after the start"
            } else {
                // Within a step (its phases, a grid or checkpoint write, malloc_trim) 1 to 3 steps
                // after the resumed one: a step of this run took 150-200 ms with the debug build
                // on the loaded 2-vCPU machine.
                let after = newest + Int.random(in: 1...3, using: &rng), delay = Int.random(in: 0..<250, using: &rng)
                #expect(run.wait(for: "step \(after)/"), "kill \(i): the run ended before step \(after):\n\(run.text)")
                usleep(UInt32(delay) * 1000)
                moment = "\(delay) ms after step \(after)'s progress line"
            }
            run.send(SIGKILL)
            let (_, output) = run.finish()
            moments.append(moment)
            let context = "kill \(i), \(moment):\n\(output)"
            #expect(run.process.terminationReason == .uncaughtSignal && run.process.terminationStatus == SIGKILL, "\(context)")
            // The run before this one left `newest`: this one resumed from it, with no fall-back.
            if newest > 0 {
                #expect(output.contains("resuming from \(Self.checkpoint(dir, step: newest)) at step \(newest)\n"), "\(context)")
            }
            #expect(!output.contains("unreadable"), "\(context)")
            if !InterruptTests.temporaries(in: dir).isEmpty { leftPartlyWritten += 1 }
            // A kill mid-write leaves a hidden temporary; every checkpoint under its final name is
            // whole and passes its checksum.
            for path in Checkpoint.list(in: dir) {
                #expect(throws: Never.self, "\(context)") { _ = try SafeTensorsArchive(contentsOf: path) }
            }
        }

        // The last resume runs to the end: a few steps past the newest checkpoint, across a grid
        // and a checkpoint. The temporaries the kills left are removed (their writers are dead).
        let newest = InterruptTests.newestCheckpointStep(dir) ?? 0, steps = newest + 3
        let (status, output) = try execute(ganflowExecutable, Self.arguments(dir: dir, steps: steps) + ["--resume"])
        #expect(status == 0, "\(output)")
        if newest > 0 {
            #expect(output.contains("resuming from \(Self.checkpoint(dir, step: newest)) at step \(newest)\n"), "\(output)")
        }
        #expect(output.contains("finished at step \(steps)/\(steps) "), "\(output)")
        #expect(InterruptTests.temporaries(in: dir).isEmpty, "left behind: \(InterruptTests.temporaries(in: dir))")

        let (s, straightOutput) = try execute(ganflowExecutable, Self.arguments(dir: root + "/straight", steps: steps))
        #expect(s == 0, "\(straightOutput)")
        let killed = try Data(contentsOf: URL(fileURLWithPath: Self.checkpoint(dir, step: steps)))
        let straight = try Data(contentsOf: URL(fileURLWithPath: Self.checkpoint(root + "/straight", step: steps)))
        // Every weight, Adam moment and loader position, bit for bit.
        #expect(killed == straight, "after \(Self.kills) kills (\(moments.joined(separator: "; "))) the step-\(steps) checkpoint differs from an uninterrupted run's")
        print("KillTests: \(Self.kills) kills (\(moments.joined(separator: "; "))), \(leftPartlyWritten) left a partly written file, resumed to step \(steps)")
    }
}
