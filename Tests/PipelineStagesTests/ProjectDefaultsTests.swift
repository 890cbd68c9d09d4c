import Foundation
import Testing

/// Defaults that name project files work from any directory: they are found from the executable's
/// or the package's location, not the current directory.
@Suite struct ProjectDefaultsTests {
    @Test func scoreFindsTheDefaultClassifierFromAnotherDirectory() throws {
        let elsewhere = temporaryDirectory("score-elsewhere")
        let (status, output) = try execute(ganflowExecutable, [
            "score", fixture("fashion-mnist"), "--reference", fixture("idx/t10k-256-images-idx3-ubyte.gz"),
            "--limit", "40", "--kid-subsets", "2", "--kid-subset-size", "20", "--json",
        ], directory: elsewhere)
        #expect(status == 0, "\(output)")
        #expect(output.hasPrefix(#"{"images":40,"reference":40,"fid":"#), "\(output)")
    }
}
