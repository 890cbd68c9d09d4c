import Dispatch
import Foundation
import Testing
@testable import PipelineGraph
import TensorRuntime

/// The Ctrl-C rule of `ganflow run` at the level of its handler, in this process with SIGUSR2
/// (SIGINT would reach the watchers of runs other tests have in flight): one signal asks for a
/// stop after the step, a second exits at once, and a run that starts after another one ended in
/// the same process still hears the signal. `InterruptTests` sends SIGINT to real runs.
@Suite(.serialized) struct SignalWatcherTests {
    /// libdispatch installs its handler for a signal when the source registers, after `resume`;
    /// until then SIGUSR2 would end the process. Waits for that handler.
    func waitForHandler() {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            var action = sigaction()
            sigaction(SIGUSR2, nil, &action)
            if action.__sigaction_handler.sa_handler != nil { return }
            Thread.sleep(forTimeInterval: 0.01)
        }
        Issue.record("libdispatch never installed its SIGUSR2 handler")
    }

    @Test func oneSignalAsksForAStopAndDoesNotExit() {
        let stop = StopFlag()
        let exits = Locked(0)
        let watcher = SignalWatcher(stop: stop, signal: SIGUSR2, exitNow: { exits.withLock { $0 += 1 } })
        defer { watcher.cancel() }
        waitForHandler()
        kill(getpid(), SIGUSR2)
        let deadline = Date().addingTimeInterval(10)
        while !stop.isRequested && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        Thread.sleep(forTimeInterval: 0.2)
        #expect(stop.isRequested)
        #expect(exits.withLock { $0 } == 0)
    }

    @Test func aSecondSignalAfterTheFirstWasHandledExits() {
        let stop = StopFlag()
        let exits = Locked(0)
        let watcher = SignalWatcher(stop: stop, signal: SIGUSR2, exitNow: { exits.withLock { $0 += 1 } })
        defer { watcher.cancel() }
        waitForHandler()
        kill(getpid(), SIGUSR2)
        let deadline = Date().addingTimeInterval(10)
        while !stop.isRequested && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        #expect(stop.isRequested)
        #expect(exits.withLock { $0 } == 0)
        kill(getpid(), SIGUSR2)
        while exits.withLock({ $0 }) == 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        #expect(exits.withLock { $0 } == 1)
    }

    /// One process, several runs (`ganflow compare` runs its variants one after another): a
    /// watcher made after another one ended still hears the signal. (When each watcher set the
    /// signal back to its default action at the end, libdispatch's handler was gone for good and
    /// a later run ignored Ctrl-C.)
    @Test func aRunAfterAnEndedOneStillHearsTheSignal() {
        let first = SignalWatcher(stop: StopFlag(), signal: SIGUSR2, exitNow: {})
        waitForHandler()
        first.cancel()
        let stop = StopFlag()
        let watcher = SignalWatcher(stop: stop, signal: SIGUSR2, exitNow: {})
        defer { watcher.cancel() }
        kill(getpid(), SIGUSR2)
        let deadline = Date().addingTimeInterval(10)
        while !stop.isRequested && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        #expect(stop.isRequested)
    }
}
