import Foundation
import ImageIO
import PipelineGraph
@testable import PipelineStages
import Testing
import TensorRuntime

/// `image.load` (style transfer's content and style) reads every format through ImageFile.
@Suite struct ImageLoadStageTests {
    @Test func loadsJPEGAndWebPUprightByContent() throws {
        // chelsea-exif6.jpg is stored 48x32 with orientation 6: upright it is 32x48.
        let jpeg = try buildPipeline(#""data": { "type": "image.load", "path": "Fixtures/images/chelsea-exif6.jpg", "size": 48 }"#, consume: "data.image").stage()
        #expect(jpeg.outputs == ["image": .tensor([1, 3, 48, 32])])
        let webp = try buildPipeline(#""data": { "type": "image.load", "path": "Fixtures/images/coffee-lossy.webp", "size": 30, "fit": "square" }"#, consume: "data.image").stage()
        #expect(webp.outputs == ["image": .tensor([1, 3, 30, 30])])
        let renamed = try buildPipeline(#""data": { "type": "image.load", "path": "Fixtures/images/broken/png-named.jpg", "size": 40 }"#, consume: "data.image").stage()
        #expect(renamed.outputs == ["image": .tensor([1, 3, 27, 40])])
    }

    @Test func badFilesAndBombsNameTheFile() {
        let root = repositoryRoot
        #expect(buildProblems(#""data": { "type": "image.load", "path": "Fixtures/images/broken/truncated.jpg" }"#, consume: "data.image") == [
            "$.stages.data.path: \(root)/Fixtures/images/broken/truncated.jpg: damaged JPEG data: Premature end of JPEG file",
        ])
        #expect(buildProblems(#""data": { "type": "image.load", "path": "Fixtures/images/broken/bomb.webp" }"#, consume: "data.image") == [
            "$.stages.data.path: \(root)/Fixtures/images/broken/bomb.webp: the header declares 16383x16383 pixels, more than the limit of 89478485 (a decompression bomb?); raise the limit ('maxPixels', --max-pixels) to read it",
        ])
        #expect(buildProblems(#""data": { "type": "image.load", "path": "Fixtures/images/chelsea-baseline.jpg", "maxPixels": 1000 }"#, consume: "data.image") == [
            "$.stages.data.path: \(root)/Fixtures/images/chelsea-baseline.jpg: the header declares 160x106 pixels, more than the limit of 1000 (a decompression bomb?); raise the limit ('maxPixels', --max-pixels) to read it",
        ])
    }
}
