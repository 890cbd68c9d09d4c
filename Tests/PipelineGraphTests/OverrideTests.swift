import Testing
@testable import PipelineGraph

@Suite struct OverrideTests {
    let base = #"{"name": "p", "seed": 1, "steps": 10, "stages": {"opt": {"type": "optimizer.adam", "lr": 0.1}}, "schedule": [{"run": ["opt"]}]}"#

    @Test func setsStageKeysTopLevelKeysAndTypes() throws {
        var v = try JSONParser.parse(base).value
        try Overrides.apply(["opt.lr=0.5", "opt.betas=[0, 0.9]", "opt.type=optimizer.sgd", "seed=7", "opt.note=plain text"], to: &v, file: "p.json")
        #expect(v["stages"]?["opt"]?["lr"] == .number(0.5))
        #expect(v["stages"]?["opt"]?["betas"] == .array([.number(0), .number(0.9)]))
        #expect(v["stages"]?["opt"]?["type"] == .string("optimizer.sgd"))
        #expect(v["stages"]?["opt"]?["note"] == .string("plain text"))
        #expect(v["seed"] == .number(7))
    }

    @Test func unknownStageIsAnErrorWithSuggestion() throws {
        var v = try JSONParser.parse(base).value
        #expect {
            try Overrides.apply(["opr.lr=1"], to: &v, file: "p.json")
        } throws: { e in
            (e as? PipelineErrors)?.description == "--set on p.json: $.stages.opr: no stage 'opr' to set 'opr.lr' on (did you mean 'opt'?)"
        }
        #expect {
            try Overrides.apply(["opt.lr"], to: &v, file: "p.json")
        } throws: { e in
            (e as? PipelineErrors)?.description == "--set on p.json: 'opt.lr' is not of the form stage.key=value"
        }
    }
}
