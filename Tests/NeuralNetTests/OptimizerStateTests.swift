import Testing
import NeuralNet
import TensorRuntime

private func copies(_ parameters: [(name: String, tensor: Tensor)]) -> [(name: String, tensor: Tensor)] {
    parameters.map { ($0.name, $0.tensor.copy()) }
}

@Suite struct OptimizerStateTests {
    /// Stopping after two steps, saving, and resuming in a new optimizer continues bit for bit.
    @Test(arguments: GoldenOptimizerRuns.shared.cases)
    func exportAndImportContinueIdentically(_ c: GoldenCase) throws {
        let runs = GoldenOptimizerRuns.shared
        let original = try runs.freshParameters()
        let a = try makeOptimizer(c, original)
        let schedule = try c.schedule()
        for step in 0..<2 {
            schedule.apply(to: a)
            try a.step(gradients: runs.gradients(atStep: step))
        }

        // Through a safetensors file image, as a checkpoint would store it.
        var archive = SafeTensorsArchive()
        archive.add(a.exportState(prefix: "optimizer.G"))
        let reread = try SafeTensorsArchive(decoding: archive.encoded(), source: "ckpt.safetensors")
        let resumed = copies(original)
        let b = try makeOptimizer(c, resumed)
        try b.importState(try reread.optimizerState(prefix: "optimizer.G"), prefix: "optimizer.G")
        #expect(b.stepCount == 2)

        for step in 2..<5 {
            let g = try runs.gradients(atStep: step)
            schedule.apply(to: a)
            schedule.apply(to: b)
            try a.step(gradients: g)
            try b.step(gradients: g)
        }
        for (x, y) in zip(original, resumed) { #expect(x.tensor.scalars == y.tensor.scalars, "\(c.name) \(x.name)") }
        // And the uninterrupted run is still PyTorch's.
        for (k, p) in original.enumerated() { #expect(worstRelativeError(p.tensor.scalars, c.parameters[4][k]) <= 1e-6) }
    }

    /// Without the imported state the continuation differs, so the test above is not vacuous.
    @Test func resumingWithoutStateDiverges() throws {
        let runs = GoldenOptimizerRuns.shared
        let c = runs.cases.first { $0.name == "adam" }!
        let original = try runs.freshParameters()
        let a = try makeOptimizer(c, original)
        for step in 0..<2 { try a.step(gradients: runs.gradients(atStep: step)) }
        let resumed = copies(original)
        let b = try makeOptimizer(c, resumed)
        try a.step(gradients: runs.gradients(atStep: 2))
        try b.step(gradients: runs.gradients(atStep: 2))
        #expect(original[0].tensor.scalars != resumed[0].tensor.scalars)
    }

    @Test func resetStateBehavesLikeANewOptimizer() throws {
        let runs = GoldenOptimizerRuns.shared
        for c in runs.cases {
            let p = try runs.freshParameters()
            let o = try makeOptimizer(c, p)
            for step in 0..<3 { try o.step(gradients: runs.gradients(atStep: step)) }
            o.resetState()
            #expect(o.stepCount == 0)
            let q = copies(p)
            let fresh = try makeOptimizer(c, q)
            try o.step(gradients: runs.gradients(atStep: 3))
            try fresh.step(gradients: runs.gradients(atStep: 3))
            for (x, y) in zip(p, q) { #expect(x.tensor.scalars == y.tensor.scalars, "\(c.name)") }
        }
    }

    @Test func exportedNamesFollowPyTorchSlots() throws {
        let p = try GoldenOptimizerRuns.shared.freshParameters()
        let adam = try Adam(parameters: p).exportState()
        #expect(Set(adam.tensors.keys) == ["optimizer.layer.weight.exp_avg", "optimizer.layer.weight.exp_avg_sq",
                                           "optimizer.layer.bias.exp_avg", "optimizer.layer.bias.exp_avg_sq"])
        #expect(adam.integers == ["optimizer.step": 0])
        #expect(adam.tensors["optimizer.layer.weight.exp_avg"]?.shape == [2, 3])
        let rms = try RMSprop(parameters: p, momentum: 0.5, centered: true).exportState(prefix: "")
        #expect(Set(rms.tensors.keys) == ["layer.weight.square_avg", "layer.weight.momentum_buffer", "layer.weight.grad_avg",
                                          "layer.bias.square_avg", "layer.bias.momentum_buffer", "layer.bias.grad_avg"])
        #expect(rms.integers == ["step": 0])
        #expect(try SGD(parameters: p, learningRate: 0.1).exportState().tensors.isEmpty)
    }

    @Test func exportIsASnapshot() throws {
        let runs = GoldenOptimizerRuns.shared
        let p = try runs.freshParameters()
        let o = try Adam(parameters: p)
        try o.step(gradients: runs.gradients(atStep: 0))
        let saved = o.exportState()
        let before = saved.tensors["optimizer.layer.bias.exp_avg"]!.scalars
        #expect(before.contains { $0 != 0 })
        try o.step(gradients: runs.gradients(atStep: 1))
        #expect(saved.tensors["optimizer.layer.bias.exp_avg"]!.scalars == before)
    }

    @Test func badStateIsRejectedNamingTheEntry() throws {
        let runs = GoldenOptimizerRuns.shared
        let p = try runs.freshParameters()
        let o = try Adam(parameters: p)
        try o.step(gradients: runs.gradients(atStep: 0))
        let good = o.exportState()

        var missing = good
        missing.tensors["optimizer.layer.bias.exp_avg_sq"] = nil
        #expect(throws: OptimizerError("adam: state has no 'optimizer.layer.bias.exp_avg_sq'")) { try o.importState(missing) }

        var misshapen = good
        misshapen.tensors["optimizer.layer.weight.exp_avg"] = Tensor(zeros: [6])
        #expect(throws: OptimizerError("adam: 'optimizer.layer.weight.exp_avg' has shape [6], but parameter 'layer.weight' has shape [2, 3]")) {
            try o.importState(misshapen)
        }

        var stray = good
        stray.tensors["optimizer.layer.gamma.exp_avg"] = Tensor(zeros: [1])
        #expect(throws: OptimizerError("adam: state has 'optimizer.layer.gamma.exp_avg', which matches no parameter and slot of this optimizer")) {
            try o.importState(stray)
        }

        var noStep = good
        noStep.integers = [:]
        #expect(throws: OptimizerError("adam: state has no 'optimizer.step'")) { try o.importState(noStep) }

        // SGD without momentum has no buffers to offer a momentum SGD.
        let plain = try SGD(parameters: p, learningRate: 0.1).exportState()
        #expect(throws: OptimizerError("sgd: state has no 'optimizer.layer.weight.momentum_buffer'")) {
            try SGD(parameters: p, learningRate: 0.1, momentum: 0.9).importState(plain)
        }

        // A failed import leaves the optimizer as it was.
        #expect(o.stepCount == 1)
        #expect(o.exportState().tensors["optimizer.layer.weight.exp_avg"]!.scalars == good.tensors["optimizer.layer.weight.exp_avg"]!.scalars)
    }

    @Test func badGradientsAreRejected() throws {
        let p = try GoldenOptimizerRuns.shared.freshParameters()
        let o = try SGD(parameters: p, learningRate: 0.1)
        #expect(throws: OptimizerError("sgd: 1 gradients for 2 parameters")) { try o.step(gradients: [Tensor(zeros: [2, 3])]) }
        #expect(throws: OptimizerError("sgd: gradient for 'layer.bias' has shape [1, 3], but the parameter has shape [3]")) {
            try o.step(gradients: [Tensor(zeros: [2, 3]), Tensor(zeros: [1, 3])])
        }
        #expect(o.stepCount == 0)
    }

    @Test func badConfigurationsAreRejected() throws {
        let p = try GoldenOptimizerRuns.shared.freshParameters()
        #expect(throws: OptimizerError("sgd: nesterov needs momentum > 0 and dampening 0")) {
            try SGD(parameters: p, learningRate: 0.1, nesterov: true)
        }
        #expect(throws: OptimizerError("adam: beta1 must be in [0, 1), got 1.0")) { try Adam(parameters: p, beta1: 1) }
        #expect(throws: OptimizerError("adamw: learningRate must be at least 0.0, got -0.1")) { try AdamW(parameters: p, learningRate: -0.1) }
        #expect(throws: OptimizerError("rmsprop: parameter 'layer.weight' is listed twice")) {
            try RMSprop(parameters: [p[0], ("layer.weight", Tensor(zeros: [1]))])
        }
        #expect(throws: OptimizerError("adam: parameter 'alias' is the same tensor as an earlier one")) {
            try Adam(parameters: [p[0], ("alias", p[0].tensor)])
        }
    }

    @Test func stepWritesInPlaceWithoutRecording() throws {
        let weight = try Tensor(shape: [3], scalars: [1, 2, 3]).requiringGradients()
        let storage = weight.storage
        let o = try SGD(parameters: [("w", weight)], learningRate: 0.5)
        // A strided gradient view: elements 0, 2, 4 of [1, 9, 2, 9, 3].
        let base = try Tensor(shape: [5], scalars: [1, 9, 2, 9, 3])
        let g = Tensor(storage: base.storage, shape: [3], strides: [2])
        try o.step(gradients: [g])
        #expect(weight.scalars == [0.5, 1, 1.5])
        #expect(weight.storage === storage)
        #expect(weight.gradFn == nil)
        #expect(weight.requiresGrad)
    }
}

@Suite struct LearningRateScheduleTests {
    @Test func constant() throws {
        let s = try LearningRateSchedule(baseRate: 2e-4)
        #expect([0, 1, 1000].map(s.rate(atStep:)) == [2e-4, 2e-4, 2e-4])
    }

    @Test func stepDecay() throws {
        let s = try LearningRateSchedule(baseRate: 0.1, kind: .step(stepSize: 3, gamma: 0.5))
        #expect((0..<8).map(s.rate(atStep:)) == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025])
    }

    @Test func linearDecayHoldsFallsAndHolds() throws {
        let s = try LearningRateSchedule(baseRate: 1.0, kind: .linearDecay(start: 100, end: 200, finalFactor: 0.2))
        #expect(s.rate(atStep: 0) == 1)
        #expect(s.rate(atStep: 100) == 1)
        #expect(abs(s.rate(atStep: 150) - 0.6) < 1e-12)
        #expect(abs(s.rate(atStep: 175) - 0.4) < 1e-12)
        #expect(abs(s.rate(atStep: 200) - 0.2) < 1e-12)
        #expect(abs(s.rate(atStep: 10_000) - 0.2) < 1e-12)
    }

    @Test func appliesAtTheOptimizersStep() throws {
        let runs = GoldenOptimizerRuns.shared
        let o = try Adam(parameters: runs.freshParameters(), learningRate: 1)
        let s = try LearningRateSchedule(baseRate: 0.01, kind: .step(stepSize: 1, gamma: 0.1))
        s.apply(to: o)
        #expect(o.learningRate == 0.01)
        try o.step(gradients: runs.gradients(atStep: 0))
        s.apply(to: o)
        #expect(abs(o.learningRate - 0.001) < 1e-15)
    }

    @Test func invalidSchedulesAreRejected() {
        #expect(throws: OptimizerError("schedule: stepSize must be positive, got 0")) {
            try LearningRateSchedule(baseRate: 1, kind: .step(stepSize: 0, gamma: 0.5))
        }
        #expect(throws: OptimizerError("schedule: linear decay needs 0 <= start < end, got start 5 and end 5")) {
            try LearningRateSchedule(baseRate: 1, kind: .linearDecay(start: 5, end: 5, finalFactor: 0))
        }
    }
}
