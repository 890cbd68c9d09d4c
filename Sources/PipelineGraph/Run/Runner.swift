import Dispatch
import Foundation
import Logging
import Synchronization
import TensorRuntime

/// A data stage that knows how many batches make an epoch, so a run can be given in epochs.
public protocol EpochSource: Stage {
    var batchesPerEpoch: Int { get }
}

/// A loss or other scalar that became NaN or infinite.
public struct NonFiniteValue: Error, CustomStringConvertible, Sendable {
    public var wire: String
    public var step: Int
    public var value: Double
    /// The newest checkpoint on disk when the run stopped, written before the value went bad.
    public var lastCheckpoint: String?
    public var description: String {
        let shown = value.isNaN ? "NaN" : "\(value)"
        let stage = String(wire.prefix { $0 != "." })
        return "step \(step): '\(wire)' is \(shown) (stage '\(stage)'); stopping at the first non-finite value; "
            + (lastCheckpoint.map { "the last good checkpoint is \($0)" } ?? "no checkpoint was written before it")
    }
}

/// A checkpoint that could not be written (a full disk, a vanished mount): the run stops rather
/// than train on without a way back.
public struct CheckpointWriteFailure: Error, CustomStringConvertible, Sendable {
    public var step: Int
    /// The file error, which names the path.
    public var reason: String
    public var lastCheckpoint: String?
    public var description: String {
        "step \(step): cannot write a checkpoint: \(reason); stopping; "
            + (lastCheckpoint.map { "the last good checkpoint, \($0), is intact" } ?? "no earlier checkpoint exists")
    }
}

/// Hears every logged step of a run, as `metrics.jsonl` gets it (TensorBoard event writers,
/// dashboards).
public protocol RunObserver: AnyObject, Sendable {
    /// The scalars logged for `step`, `seconds` into the run.
    func runDidLog(step: Int, seconds: Double, scalars: [(String, Double)]) throws
    /// The run ended, finished or interrupted.
    func runDidFinish() throws
}

/// What a finished (or stopped) run reports.
public struct RunSummary: Sendable {
    public var steps: Int
    public var lastStep: Int
    public var seconds: Double
    public var finalScalars: [String: Double]
    public var interrupted: Bool
    /// The run stopped because its time limit was up (not interrupted: it did what was asked).
    public var timeLimitReached = false
    public var checkpoint: String?
}

/// Runs a pipeline's schedule step by step, with logging, checkpoints and resume.
///
/// In a data-parallel run (a communicator of several ranks) every rank runs the training phases
/// on its shard; the logged scalars are averaged over the ranks, so they are those of the global
/// batch; rank 0 alone runs the side stages (sinks, metrics) and writes the run directory
/// (pipeline.json, metrics, checkpoints, summary). Every rank can resume from the same
/// checkpoint. Stages run in the serial order there, so that every rank starts its collectives
/// in the same order.
public final class Runner: @unchecked Sendable {
    public struct Options: Sendable {
        public var runDirectory: String
        public var scheduler: SchedulerKind = .dispatch
        public var resume = false
        public var stepsOverride: Int?
        /// Stop, as Ctrl-C does (finish the step, checkpoint, report), once the run has trained
        /// this long; a resumed run counts the time before its checkpoint too.
        public var timeLimit: TimeLimit?
        public var quiet = false
        /// Kernel threads for the leader's sinks and metrics in a data-parallel run (nil: the
        /// run's own). The other ranks wait for it meanwhile, sleeping between polls, so their
        /// cores on this machine are free (see `MPIEnvironment.localSize`).
        public var sidePassThreads: Int?
        /// Told about every logged step and about the end of the run.
        public var observers: [any RunObserver] = []
        public init(runDirectory: String) { self.runDirectory = runDirectory }
    }

    public let pipeline: Pipeline
    public let options: Options
    let evaluator: Evaluator
    let logger: Logger
    /// The checkpoint the last `run()` resumed from, if any.
    public private(set) var resumedFrom: String?
    /// Set by the first SIGINT: finish the step, checkpoint, stop.
    public let stopRequested = StopFlag()
    /// Set when the time limit is up: the run stops as for `stopRequested`.
    let timeUp = StopFlag()
    /// Per phase, the stages whose values it takes from the step's earlier phases (its `reuse`,
    /// with the stages they read from); `keep`: every such stage.
    let reuse: [Set<String>]
    let keep: Set<String>

    public init(pipeline: Pipeline, options: Options, logger: Logger = Logger(label: "ganflow")) {
        self.pipeline = pipeline
        self.options = options
        // Collectives must start in one order on every rank: no concurrent stage scheduling.
        self.evaluator = Evaluator(pipeline: pipeline, kind: pipeline.context.ranks > 1 ? .serial : options.scheduler)
        reuse = pipeline.document.schedule.map { pipeline.upstream(of: $0.reuse) }
        keep = reuse.reduce(into: Set()) { $0.formUnion($1) }
        self.logger = logger
    }

    /// Steps the run lasts: `steps`, or `epochs` times the data stage's batches per epoch divided
    /// by the batches a step draws.
    public func totalSteps() throws -> Int {
        if let s = options.stepsOverride { return s }
        if let s = pipeline.document.steps { return s }
        let epochs = pipeline.document.epochs ?? 1
        guard let (id, source) = pipeline.order.lazy.compactMap({ id in
            (self.pipeline.nodes[id]!.stage as? any EpochSource).map { (id, $0) } }).first else {
            throw PipelineErrors([PipelineError("run.epochs", file: pipeline.document.file, path: .root / "epochs",
                                                "'epochs' needs a dataset stage; give 'steps' instead")])
        }
        var draws = 0
        for (p, phase) in pipeline.document.schedule.enumerated() {
            let plan = pipeline.plan(pipeline.targets(of: phase), reusing: reuse[p])
            if plan[id] != nil && !reuse[p].contains(id) { draws += phase.repeats }
        }
        return max(1, epochs * source.batchesPerEpoch / max(draws, 1))
    }

    /// Where a run stands between steps.
    struct Position {
        var step = 0
        /// Evaluations so far: with the seed, it keys every random stream.
        var index = 0
        /// The newest value of every scalar logged.
        var latest: [String: Double] = [:]
        /// The newest checkpoint on disk.
        var lastCheckpoint: String?
    }

    /// Trains to the end of the schedule (or to the first Ctrl-C) and returns the summary.
    ///
    /// One pass per method, each throwing its problems: the run directory, the resume point, then
    /// per step the training phases, the side stages, the log, the stop check, the checkpoint and
    /// the release of freed memory; at the end the stages' `finish` and the summary.
    public func run() throws -> RunSummary {
        let leader = pipeline.context.communicator.isLeader
        // Every rank reads the same directory, so every rank refuses alike.
        if !options.resume, let newest = Runner.existingRun(in: options.runDirectory) {
            throw PipelineErrors([PipelineError("run.exists", file: options.runDirectory,
                "holds a run already (its newest checkpoint is \((newest as NSString).lastPathComponent)): --resume continues it; "
                + "to start again, give another --out (\(Runner.freeSibling(of: options.runDirectory)) is free) or remove \(options.runDirectory)")])
        }
        if leader { try prepareDirectory() }
        var position = try resumePosition()
        try agree(step: position.step, index: position.index)
        let total = try totalSteps()
        let metrics = leader ? try MetricsLog(path: (options.runDirectory as NSString).appendingPathComponent("metrics.jsonl"),
                                              truncatingAfter: options.resume ? position.step : 0) : nil
        let started = Date()
        // The run's clock: the seconds before the checkpoint resumed from, then this session's.
        let resumedSeconds = metrics?.resumedSeconds ?? 0
        let progress = Progress(total: total, startStep: position.step, every: pipeline.document.logEvery,
                                timeLimit: options.timeLimit?.seconds, resumedSeconds: resumedSeconds, started: started)
        defer { progress.endLine() }
        let elapsed = { resumedSeconds + Date().timeIntervalSince(started) }
        position.lastCheckpoint = leader ? Checkpoint.list(in: options.runDirectory).last : nil
        let signals = SignalWatcher(stop: stopRequested)
        defer { signals.cancel() }

        // A Ctrl-C before the first step stops before it; after that the flag is read once per
        // step, after its training phases and before the side stages and the checkpoint decision,
        // so a step whose end saw the request is always checkpointed. A Ctrl-C that arrives later
        // (during the side stages, the checkpoint write or the release of memory) is seen at the
        // end of the next step, which is checkpointed. The time limit is checked at the same
        // point; the step that finds it up is the last, and runs every side stage as the last
        // step of the schedule does (final metrics, grids).
        var (stopping, seconds) = try stopAgreed(elapsed: elapsed())
        do {
            while position.step < total && !stopping {
                evaluator.progress = runProgress(stepsDone: position.step, of: total, seconds: seconds)
                position.step += 1
                try Profiler.withLane("runner") { try Profiler.measure("step", category: .runner) {
                    let step = position.step
                    var scalars = try trainingPass(step: step, index: &position.index)
                    (stopping, seconds) = try stopAgreed(elapsed: elapsed())
                    let sideRan = try sidePass(step: step, last: step == total || timeUp.isRequested,
                                               index: position.index, into: &scalars)
                    // Losses first, then metrics, then the rest (learning rates, counters), for the progress line.
                    scalars.sort { (rank($0.0), $0.0) < (rank($1.0), $1.0) }
                    for (k, v) in scalars { position.latest[k] = v }
                    try log(step: step, scalars: scalars, started: started, metrics: metrics, progress: progress, last: stopping)
                    let checkpointing = leader && (step % pipeline.document.checkpointEvery == 0 || step == total || stopping)
                    if checkpointing { try checkpoint(&position) }
                    // Sample passes and checkpoints allocate far more than a training step; give back
                    // what they freed (see Runtime.releaseFreeMemory).
                    if sideRan || checkpointing { Runtime.releaseFreeMemory() }
                } }
            }
        } catch var failure as NonFiniteValue {
            failure.lastCheckpoint = position.lastCheckpoint
            throw failure
        }
        let early = stopping && position.step < total
        let summary = RunSummary(steps: total, lastStep: position.step, seconds: Date().timeIntervalSince(started),
                                 finalScalars: position.latest, interrupted: early && !timeUp.isRequested,
                                 timeLimitReached: early && timeUp.isRequested, checkpoint: position.lastCheckpoint)
        try finish(summary, metrics: metrics)
        return summary
    }

    /// The newest checkpoint in `runDirectory`, if a run has left one there. A run started afresh
    /// in such a directory would cut its `metrics.jsonl` and leave the old run's later checkpoints
    /// to be taken for its own, so only `--resume` may go on there.
    public static func existingRun(in runDirectory: String) -> String? {
        Checkpoint.list(in: runDirectory).last
    }

    /// The first of `directory-2`, `directory-3`, ... that does not exist, to suggest as an `--out`.
    public static func freeSibling(of directory: String) -> String {
        let base = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        var n = 2
        while FileManager.default.fileExists(atPath: "\(base)-\(n)") { n += 1 }
        return "\(base)-\(n)"
    }

    /// Creates the run directory, records the pipeline in it and removes the temporary files of
    /// writers killed midway (leader only).
    func prepareDirectory() throws {
        let dir = options.runDirectory
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try AtomicFile.write(Array((pipeline.document.json.serialized() + "\n").utf8),
                             to: (dir as NSString).appendingPathComponent("pipeline.json"))
        for leftover in AtomicFile.removeAbandonedTemporaries(in: dir)
            + AtomicFile.removeAbandonedTemporaries(in: (dir as NSString).appendingPathComponent(Checkpoint.directoryName)) {
            logger.info("removed \(leftover), left behind by a run that was killed while writing it")
        }
    }

    /// Where the run starts: step 0, or with `--resume` the newest readable checkpoint, loaded
    /// into the stages. Unreadable checkpoints are set aside; a checkpoint of another pipeline
    /// is refused.
    func resumePosition() throws -> Position {
        let dir = options.runDirectory
        let leader = pipeline.context.communicator.isLeader
        let quiet = options.quiet || !leader
        var position = Position()
        guard options.resume else { return position }
        var loaded: Checkpoint.Loaded?
        var refused: [String] = []
        for path in Checkpoint.list(in: dir).reversed() {
            do {
                loaded = try Checkpoint.load(pipeline, from: path)
                break
            } catch let e as PipelineErrors {
                throw e
            } catch {
                // Set the unreadable file aside, so it neither hides nor displaces good ones.
                refused.append("\(error)")
                if leader {
                    let aside = path + ".unreadable"
                    try? FileManager.default.removeItem(atPath: aside)
                    try? FileManager.default.moveItem(atPath: path, toPath: aside)
                    logger.warning("skipping unreadable checkpoint (moved to \(aside)): \(error)")
                }
            }
        }
        if loaded == nil && !refused.isEmpty {
            throw PipelineErrors([PipelineError("checkpoint.unreadable", file: dir,
                "--resume found no readable checkpoint: " + refused.joined(separator: "; "))])
        }
        guard let loaded else {
            if !quiet { logger.info("no checkpoint to resume in \(dir); starting at step 0") }
            return position
        }
        resumedFrom = loaded.path
        if !refused.isEmpty && !quiet {
            logger.warning("fell back to \(loaded.path) because newer checkpoints could not be read")
        }
        position.step = loaded.step
        position.index = loaded.evaluationIndex
        if !quiet { logger.info("resuming from \(loaded.path) at step \(position.step)") }
        return position
    }

    /// Runs the schedule's phases for `step` and returns their scalars (averaged over the ranks
    /// in a data-parallel run), stopping on a non-finite one.
    func trainingPass(step: Int, index: inout Int) throws -> [(String, Double)] {
        let comm = pipeline.context.communicator
        var scalars: [(String, Double)] = []
        // The values of this step that a later phase reuses (checked when the pipeline was built).
        var kept: [Wire: PortValue] = [:]
        for (p, phase) in pipeline.document.schedule.enumerated() {
            // A driven stage's every/from/until gate it too (e.g. an optimizer that starts late).
            let targets = pipeline.targets(of: phase, activeAt: step)
            if targets.isEmpty { continue }
            for _ in 0..<phase.repeats {
                let given = reuse[p].isEmpty ? [:] : kept.filter { reuse[p].contains($0.key.stage) }
                let values = try evaluator.evaluate(targets, step: step, index: index, mode: .train, given: given)
                index += 1
                for (wire, value) in values where keep.contains(wire.stage) { kept[wire] = value }
                try collect(values, step: step, into: &scalars, checkFinite: comm.size == 1)
            }
        }
        if comm.size > 1 { try average(&scalars, step: step) }
        return scalars
    }

    /// Runs the sinks and metrics due at `step` (every one at the `last` step; leader only) and
    /// adds their scalars; returns whether any ran.
    func sidePass(step: Int, last: Bool, index: Int, into scalars: inout [(String, Double)]) throws -> Bool {
        guard pipeline.context.communicator.isLeader else { return false }
        let side = pipeline.sideStages.filter { pipeline.nodes[$0]!.isActive(at: step) || last }
        if side.isEmpty { return false }
        let targets = Dictionary(uniqueKeysWithValues: side.map { ($0, pipeline.allOutputs($0)) })
        let trainingThreads = Runtime.threads
        if let threads = options.sidePassThreads { Runtime.configure(threads: threads) }
        defer { Runtime.configure(threads: trainingThreads) }
        let values = try evaluator.evaluate(targets, step: step, index: index, mode: .sample)
        try collect(values, step: step, into: &scalars)
        return true
    }

    /// Appends the step's scalars to `metrics.jsonl`, tells the observers and updates the
    /// progress line.
    func log(step: Int, scalars: [(String, Double)], started: Date, metrics: MetricsLog?, progress: Progress,
             last: Bool) throws {
        if let metrics {
            let seconds = metrics.resumedSeconds + Date().timeIntervalSince(started)
            try metrics.append(step: step, seconds: seconds, scalars: scalars)
            for observer in options.observers { try observer.runDidLog(step: step, seconds: seconds, scalars: scalars) }
        }
        if !options.quiet && pipeline.context.communicator.isLeader { progress.update(step: step, scalars: scalars, last: last) }
    }

    /// Writes the checkpoint of the step `position` stands at; a failed write stops the run.
    func checkpoint(_ position: inout Position) throws {
        do {
            position.lastCheckpoint = try Profiler.measure("checkpoint", category: .runner) {
                try Checkpoint.save(pipeline, step: position.step, evaluationIndex: position.index,
                                    runDirectory: options.runDirectory, keep: pipeline.document.checkpointKeep)
            }
        } catch {
            throw CheckpointWriteFailure(step: position.step, reason: "\(error)", lastCheckpoint: position.lastCheckpoint)
        }
    }

    /// Ends the run: the stages' `finish`, then (leader) the metrics file, the observers and
    /// `summary.json`; no rank returns before every rank is here.
    func finish(_ summary: RunSummary, metrics: MetricsLog?) throws {
        for id in pipeline.order { try pipeline.nodes[id]!.stage.finish() }
        if let metrics {
            try metrics.close()
            for observer in options.observers { try observer.runDidFinish() }
            try writeSummary(summary)
        }
        // No rank leaves before the last checkpoint is written.
        try pipeline.context.communicator.barrier()
    }

    /// Checks that every rank starts at the same step and evaluation (they resumed from the same
    /// checkpoint).
    func agree(step: Int, index: Int) throws {
        let comm = pipeline.context.communicator
        guard comm.size > 1 else { return }
        var high = [Double(step), Double(index)], low = high
        try comm.allreduce(&high, .max, operation: "resume check")
        try comm.allreduce(&low, .min, operation: "resume check")
        if high != low {
            throw PipelineErrors([PipelineError("checkpoint.ranks", file: options.runDirectory,
                "the ranks resumed at different steps (\(Int(low[0])) to \(Int(high[0]))); every rank must see the same run directory")])
        }
    }

    /// Whether any rank was asked to stop or is out of time (Ctrl-C reaches the ranks at different
    /// moments, their clocks differ: they must stop after the same step), and the run's seconds
    /// (the leader's: only it knows the time before a resume), the same on every rank.
    func stopAgreed(elapsed: Double) throws -> (stop: Bool, seconds: Double) {
        let comm = pipeline.context.communicator
        let outOfTime = options.timeLimit.map { elapsed >= $0.seconds } ?? false
        var flags = [stopRequested.isRequested ? 1.0 : 0, outOfTime ? 1 : 0, elapsed]
        try comm.allreduce(&flags, .max, operation: "stop check")
        if flags[1] > 0 { timeUp.request() }
        if flags[0] > 0 || flags[1] > 0 { stopRequested.request() }
        return (flags[0] > 0 || flags[1] > 0, flags[2])
    }

    /// How far a run is toward its end (`Evaluation.progress`): the larger of `stepsDone / total`
    /// and `seconds` over the time limit, at most 1.
    func runProgress(stepsDone: Int, of total: Int, seconds: Double) -> Double {
        let bySteps = Double(stepsDone) / Double(max(total, 1))
        let byTime = options.timeLimit.map { seconds / $0.seconds } ?? 0
        return min(1, max(bySteps, byTime))
    }

    /// Replaces each training scalar by its mean over the ranks (the value for the global batch
    /// when every rank's scalar is a mean over its equal shard), then stops on a non-finite one,
    /// on every rank together.
    func average(_ scalars: inout [(String, Double)], step: Int) throws {
        let comm = pipeline.context.communicator
        // Every rank logs the same names: the same stages ran.
        scalars.sort { $0.0 < $1.0 }
        var values = scalars.map(\.1)
        try comm.allreduce(&values, operation: "scalar average")
        for i in scalars.indices {
            scalars[i].1 = values[i] / Double(comm.size)
            if !scalars[i].1.isFinite { throw NonFiniteValue(wire: scalars[i].0, step: step, value: scalars[i].1) }
        }
    }

    /// Where scalar `name` ("stage.port") goes in a step's list: the kind its stage declares
    /// (objectives, then measurements, then the rest).
    func rank(_ name: String) -> ScalarKind {
        pipeline.nodes[String(name.prefix { $0 != "." })].map { type(of: $0.stage).scalarKind } ?? .other
    }

    /// Gathers the scalar outputs of an evaluation for logging, stopping on a non-finite one.
    func collect(_ values: [Wire: PortValue], step: Int, into scalars: inout [(String, Double)],
                 checkFinite: Bool = true) throws {
        for (wire, value) in values.sorted(by: { $0.key.description < $1.key.description }) {
            guard case .scalar = value, let v = value.number else { continue }
            if checkFinite && !v.isFinite { throw NonFiniteValue(wire: wire.description, step: step, value: v) }
            if let i = scalars.firstIndex(where: { $0.0 == wire.description }) {
                scalars[i].1 = v
            } else {
                scalars.append((wire.description, v))
            }
        }
    }

    func writeSummary(_ s: RunSummary) throws {
        var entries: [(String, JSONValue)] = [
            ("pipeline", .string(pipeline.document.name)),
            ("steps", .number(Double(s.steps))),
            ("lastStep", .number(Double(s.lastStep))),
            ("seconds", .number((s.seconds * 1000).rounded() / 1000)),
            ("interrupted", .bool(s.interrupted)),
        ]
        if let limit = options.timeLimit {
            entries += [("timeLimit", .string(limit.text)), ("timeLimitReached", .bool(s.timeLimitReached))]
        }
        if let c = s.checkpoint { entries.append(("checkpoint", .string(c))) }
        entries.append(("final", .object(s.finalScalars.sorted { $0.key < $1.key }.map {
            ($0.key, .number(Double(Float($0.value).description) ?? $0.value))
        })))
        try AtomicFile.write(Array((JSONValue.object(entries).serialized() + "\n").utf8),
                             to: (options.runDirectory as NSString).appendingPathComponent("summary.json"))
    }
}

/// A flag that asks a run to stop after the current step.
public final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    public init() {}
    public func request() { value.store(true, ordering: .relaxed) }
    public var isRequested: Bool { value.load(ordering: .relaxed) }
}

/// SIGINT handling: the first one asks the run to stop after the current step; a second exits.
///
/// One dispatch signal source per signal serves the whole process and is never cancelled: on
/// Linux, libdispatch installs its signal handler only when a signal is first registered, so a
/// watcher that set the signal back to SIG_DFL or SIG_IGN when its run ended left every later run
/// of the process (the second variant of `ganflow compare`) deaf to Ctrl-C. A watcher only points
/// the source at its run while it lasts; a signal with no watcher exits as the default action
/// would (status 130). The signal and the exit are parameters so that a test can drive it with
/// another signal in its own process.
final class SignalWatcher: @unchecked Sendable {
    private let router: SignalRouter
    private let id: Int

    init(stop: StopFlag, signal signalNumber: Int32 = SIGINT,
         exitNow: @escaping @Sendable () -> Void = SignalWatcher.exitAtOnce) {
        router = SignalRouter.shared(for: signalNumber)
        id = router.install(SignalRouter.Target(stop: stop, exitNow: exitNow))
    }

    /// At once: no checkpoint, no atexit work racing the threads still running; only the
    /// half-written temporary of a checkpoint being written goes (the last one stays).
    static let exitAtOnce: @Sendable () -> Void = {
        AtomicFile.removeTemporariesInProgress()
        FileHandle.standardError.write(Data("\nsecond interrupt: exiting now\n".utf8))
        _exit(130)
    }

    func cancel() { router.remove(id) }
}

/// The process's one dispatch source for a signal, and the watcher it currently serves.
final class SignalRouter: @unchecked Sendable {
    struct Target {
        let stop: StopFlag
        let exitNow: @Sendable () -> Void
        var count = 0
    }

    private static let routers = Locked([Int32: SignalRouter]())

    static func shared(for signalNumber: Int32) -> SignalRouter {
        routers.withLock { all in
            if let r = all[signalNumber] { return r }
            let r = SignalRouter(signalNumber)
            all[signalNumber] = r
            return r
        }
    }

    private let source: DispatchSourceSignal
    private let current = Locked<(id: Int, target: Target)?>(nil)
    private let nextID = Locked(0)

    private init(_ signalNumber: Int32) {
        #if canImport(Darwin)
        signal(signalNumber, SIG_IGN)  // kqueue reports signals only beside their usual action
        #endif
        source = DispatchSource.makeSignalSource(signal: signalNumber,
                                                 queue: DispatchQueue(label: "ganflow.signal.\(signalNumber)"))
        source.setEventHandler { [source, current] in
            // Signals that arrive before the handler runs reach it once, counted in `data`.
            let n = Int(source.data)
            let action = current.withLock { c -> (() -> Void)? in
                guard var t = c?.target else { return nil }
                t.count += n
                c!.target = t
                if t.count >= 2 { return t.exitNow }
                return {
                    FileHandle.standardError.write(Data("\ninterrupt: finishing this step and writing a checkpoint (Ctrl-C again to quit at once)\n".utf8))
                    t.stop.request()
                }
            }
            // No run in progress: what the default action would do, less any half-written file.
            (action ?? { AtomicFile.removeTemporariesInProgress(); _exit(130) })()
        }
        source.resume()
    }

    func install(_ target: Target) -> Int {
        let id = nextID.withLock { $0 += 1; return $0 }
        current.withLock { $0 = (id, target) }
        return id
    }

    func remove(_ id: Int) {
        current.withLock { if $0?.id == id { $0 = nil } }
    }
}
