import PipelineGraph
import PipelineStages
import Testing

/// The core no longer infers a stage's lane or scalar kind from its type prefix: each stage
/// declares them. This checks that the shipped stages' declarations agree with their families, so
/// a new dataset stage cannot silently run in the compute lane or a new metric log among "other".
@Suite struct StageDeclarationTests {
    @Test func everyShippedStageDeclaresTheLaneAndScalarKindOfItsFamily() {
        var wrong: [String] = []
        for (name, type) in StageRegistry.standard.types.sorted(by: { $0.key < $1.key }) {
            let family = String(name.prefix { $0 != "." })
            let lane: StageLane = ["dataset", "noise"].contains(family) ? .data : family == "sink" ? .output : .compute
            let kind: ScalarKind = family == "loss" ? .objective : family == "metric" ? .measurement : .other
            if type.lane != lane { wrong.append("\(name): lane \(type.lane), expected \(lane)") }
            if type.scalarKind != kind { wrong.append("\(name): scalarKind \(type.scalarKind), expected \(kind)") }
        }
        #expect(wrong.isEmpty, "\(wrong)")
        #expect(StageRegistry.standard.types.count >= 56)
    }
}
