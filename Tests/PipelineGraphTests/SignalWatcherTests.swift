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

    /// Makes a watcher and sends it SIGUSR2 `count` times, each once the one before was handled;
    /// returns whether a stop was requested and how many times the exit was called.
    func signal(_ count: Int) -> (stop: Bool, exits: Int) {
        let stop = StopFlag()
        let exits = Locked(0)
        let watcher = SignalWatcher(stop: stop, signal: SIGUSR2, exitNow: { exits.withLock { $0 += 1 } })
        defer { watcher.cancel() }
        waitForHandler()
        let deadline = Date().addingTimeInterval(10)
        for sent in 1 ... count {
            kill(getpid(), SIGUSR2)
            let handled = { sent == 1 ? stop.isRequested : exits.withLock { $0 } >= sent - 1 }
            while !handled() && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        }
        Thread.sleep(forTimeInterval: 0.2)  // time for anything more the handler would do
        return (stop.isRequested, exits.withLock { $0 })
    }

    @Test func oneSignalAsksForAStopAndDoesNotExit() {
        let r = signal(1)
        #expect(r.stop)
        #expect(r.exits == 0)
    }

    @Test func aSecondSignalAfterTheFirstWasHandledExits() {
        let r = signal(2)
        #expect(r.stop)
        #expect(r.exits == 1)
    }

    /// One process, several runs (`ganflow compare` runs its variants one after another): a
    /// watcher made after another one ended still hears the signal. (When each watcher set the
    /// signal back to its default action at the end, libdispatch's handler was gone for good and
    /// a later run ignored Ctrl-C.)
    @Test func aRunAfterAnEndedOneStillHearsTheSignal() {
        let first = SignalWatcher(stop: StopFlag(), signal: SIGUSR2, exitNow: {})
        waitForHandler()
        first.cancel()
        #expect(signal(1).stop)
    }
}
