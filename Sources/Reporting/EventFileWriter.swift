import Foundation
import TensorRuntime

/// Appends TensorBoard events to `events.out.tfevents.<time>.<host>.<pid>.<suffix>` in a folder,
/// so `tensorboard --logdir runs` shows a run's scalars and images while it trains.
///
/// Each event is one TFRecord (masked CRC-32C framing) holding an `Event` message, written and
/// flushed at once, so a reader never sees half an event for long and an interrupted run leaves a
/// readable file.
public final class EventFileWriter: Sendable {
    public let path: String
    private let handle: Locked<FileHandle?>

    /// Creates the file in `directory` (created if missing) and writes its version event.
    public init(directory: String, suffix: String = "ganflow") throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let now = Date().timeIntervalSince1970
        let host = ProcessInfo.processInfo.hostName
        path = (directory as NSString).appendingPathComponent(
            "events.out.tfevents.\(Int(now)).\(host).\(ProcessInfo.processInfo.processIdentifier).\(suffix)")
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        handle = Locked(h)
        try write(TensorBoardEvent.fileVersion(wallTime: now))
    }

    /// Scalars of one step, each under its tag (`loss.discriminator`, `fid.distance`).
    public func scalars(_ values: [(String, Double)], step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
        guard !values.isEmpty else { return }
        try write(TensorBoardEvent.scalars(values, step: step, wallTime: wallTime))
    }

    /// An image already encoded as PNG.
    public func image(tag: String, png: [UInt8], width: Int, height: Int, channels: Int, step: Int,
                      wallTime: Double = Date().timeIntervalSince1970) throws {
        try write(TensorBoardEvent.image(tag: tag, png: png, width: width, height: height, channels: channels, step: step, wallTime: wallTime))
    }

    public func close() throws {
        try handle.withLock { h in
            try h?.synchronize()
            try h?.close()
            h = nil
        }
    }

    private func write(_ event: [UInt8]) throws {
        try handle.withLock { h in
            guard let h else { return }
            try h.write(contentsOf: TFRecord.frame(event))
        }
    }
}
