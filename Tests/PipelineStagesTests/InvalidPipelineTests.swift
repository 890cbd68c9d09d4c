import Foundation
import PipelineGraph
import PipelineStages
import Testing

/// Every invalid pipeline under Fixtures/pipelines/invalid is rejected with exactly the messages
/// written beside it.
@Suite struct InvalidPipelineTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Fixtures/pipelines/invalid").standardized.path

    static var names: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    @Test func fixturesArePresent() {
        #expect(Self.names.count >= 8)
    }

    @Test(arguments: names)
    func rejectedWithTheExpectedMessages(name: String) throws {
        let json = try Data(contentsOf: URL(fileURLWithPath: "\(Self.directory)/\(name).json"))
        let expected = try String(contentsOfFile: "\(Self.directory)/\(name).expected", encoding: .utf8)
            .split(separator: "\n").map(String.init)
        do {
            let doc = try PipelineDocument.parse(bytes: [UInt8](json), file: "\(name).json")
            _ = try PipelineBuilder(registry: .standard).build(doc, outputDirectory: NSTemporaryDirectory())
            Issue.record("\(name).json was accepted")
        } catch let e as PipelineErrors {
            #expect(e.errors.map(\.description) == expected)
        }
    }
}
