import Foundation
import Testing
@testable import ImageIO

/// Throughput measurements, run only when IMAGEIO_BENCH is set (they print, and never assert on time).
/// Meaningful in a release build: `swift build -c release --build-tests -Xswiftc -enable-testing`, then
/// `IMAGEIO_BENCH=1 swift test -c release --skip-build --filter Throughput`.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["IMAGEIO_BENCH"] != nil, "set IMAGEIO_BENCH=1 to measure throughput"))
struct ThroughputTests {
    private func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    @Test(.enabled(if: Fixtures.hasFashionMNIST, "needs Debian's dataset-fashion-mnist"))
    func idxTrainingSet() throws {
        var count = 0
        let load = try seconds {
            let data = try IDXFile.loadDataset(
                images: Fixtures.fashionMNIST + "/train-images-idx3-ubyte.gz",
                labels: Fixtures.fashionMNIST + "/train-labels-idx1-ubyte.gz")
            count = data.count
            let tensor = try Image.tensor(bytes: data.images, shape: [data.count, 1, 28, 28], range: .symmetric)
            #expect(tensor.shape == [60_000, 1, 28, 28])
        }
        #expect(count == 60_000)
        print("IDX train set (gzip inflate + [-1,1] tensor), 1 thread: \(Int(Double(count) / load)) images/s (\(String(format: "%.2f", load)) s)")
        let file = try IDXFile(path: Fixtures.fashionMNIST + "/train-images-idx3-ubyte.gz")
        let stream = try seconds {
            for start in stride(from: 0, to: 60_000, by: 64) { _ = try file.records(start..<min(start + 64, 60_000)) }
        }
        print("IDX train set streamed in records of 64, 1 thread: \(Int(60_000 / stream)) images/s")
    }

    @Test func pngFolderDecodeAndResize() throws {
        let fashion = try ImageFolder(root: Fixtures.path("fashion-mnist"))
        let rounds = 20
        let t = try seconds {
            for _ in 0..<rounds {
                for i in 0..<fashion.count { _ = try fashion.image(at: i, channels: 1).resized(width: 32, height: 32) }
            }
        }
        print("Fashion-MNIST PNG decode + resize 28->32, 1 thread: \(Int(Double(rounds * fashion.count) / t)) images/s")
        let decodeOnly = try seconds {
            for _ in 0..<rounds { for i in 0..<fashion.count { _ = try fashion.image(at: i, channels: 1) } }
        }
        print("Fashion-MNIST PNG decode only, 1 thread: \(Int(Double(rounds * fashion.count) / decodeOnly)) images/s")
        let photos = try ImageFolder(root: Fixtures.path("photos/patches"))
        let p = try seconds {
            for _ in 0..<5 {
                for i in 0..<photos.count { _ = try photos.image(at: i, channels: 3).resized(width: 32, height: 32) }
            }
        }
        print("Photo patch PNG decode + resize 64->32 RGB, 1 thread: \(Int(Double(5 * photos.count) / p)) images/s")
        let content = try PNG.read(Fixtures.path("photos/content/chelsea.png"))
        let r = try seconds { for _ in 0..<20 { _ = try content.resized(width: 64, height: 96) } }
        print("Resize \(content.width)x\(content.height) RGB -> 64x96, 1 thread: \(Int(20 / r)) images/s")
    }
}
