import Foundation
import GANFlowTestSupport
import Testing
import TensorRuntime

@Suite struct SoftmaxTests {
    /// log softmax of one row, in Double.
    static func logSoftmax(_ row: [Float]) -> [Double] {
        let xs = row.map(Double.init)
        let m = xs.max()!
        let lse = m + Foundation.log(xs.map { Foundation.exp($0 - m) }.reduce(0, +))
        return xs.map { $0 - lse }
    }

    @Test func logSoftmaxMatchesDefinitionRowByRow() throws {
        var rng = PhiloxRandom(seed: 51)
        let x = Tensor(randomNormal: [3, 5], std: 3, using: &rng)
        let v = x.scalars
        let reference = (0..<3).flatMap { Self.logSoftmax(Array(v[($0 * 5)..<($0 * 5 + 5)])) }
        let y = try x.logSoftmax()
        #expect(y.shape == [3, 5])
        #expect(OpsCheck.maxRelativeError(y.scalars, reference) < 1e-6)
        let rowSums = try x.softmax().sum(axes: [1]).scalars
        #expect(OpsCheck.maxRelativeError(rowSums, [1, 1, 1] as [Float]) < 1e-6)
    }

    @Test func logSoftmaxDoesNotOverflow() throws {
        let x = try Tensor(shape: [2, 3], scalars: [1000, 0, -1000, -500, -500, -500])
        let y = try x.logSoftmax().scalars
        #expect(y[0] == 0 && y[1] == -1000 && y[2] == -2000)
        #expect(abs(y[3] - -Float(Foundation.log(3.0))) < 1e-6)
    }

    @Test func crossEntropyMatchesDefinition() throws {
        var rng = PhiloxRandom(seed: 52)
        let logits = Tensor(randomNormal: [4, 3], std: 2, using: &rng)
        let labels = try Tensor(shape: [4], scalars: [2, 0, 1, 2])
        let v = logits.scalars
        let reference = (0..<4).map { i in -Self.logSoftmax(Array(v[(i * 3)..<(i * 3 + 3)]))[Int(labels.scalars[i])] }
        let none = try Tensor.crossEntropy(logits, labels: labels, reduction: .none)
        #expect(none.shape == [4])
        #expect(OpsCheck.maxRelativeError(none.scalars, reference) < 1e-6)
        #expect(OpsCheck.maxRelativeError([try Tensor.crossEntropy(logits, labels: labels).item()], [reference.reduce(0, +) / 4]) < 1e-6)
        #expect(OpsCheck.maxRelativeError([try Tensor.crossEntropy(logits, labels: labels, reduction: .sum).item()],
                                          [reference.reduce(0, +)]) < 1e-6)
    }

    @Test func gradientsOfFirstAndSecondOrder() throws {
        var rng = PhiloxRandom(seed: 53)
        let x = Tensor(randomNormal: [3, 4], std: 1.5, using: &rng)
        let labels = try Tensor(shape: [3], scalars: [3, 0, 1])
        let weights = Tensor(randomNormal: [3, 4], using: &rng)
        let cases: [(String, ([Tensor]) throws -> Tensor)] = [
            ("log softmax", { v in try (try v[0].logSoftmax() * weights).sum() }),
            ("softmax", { v in try (try v[0].softmax() * weights).sum() }),
            ("cross entropy", { v in try Tensor.crossEntropy(v[0], labels: labels) }),
            ("cross entropy sum", { v in try Tensor.crossEntropy(v[0], labels: labels, reduction: .sum) }),
        ]
        for (name, f) in cases {
            let first = try GradientCheck.firstOrderError([x.copy()], f)
            #expect(first < 1e-2, "\(name): \(first)")
            let second = try GradientCheck.secondOrderError([x.copy()], f)
            #expect(second < 2e-2, "\(name) (second order): \(second)")
        }
    }

    @Test func crossEntropyGradientIsSoftmaxMinusOneHot() throws {
        let x = try Tensor(shape: [1, 3], scalars: [0, 0, 0])
        x.requiringGradients()
        let g = try gradients(of: try Tensor.crossEntropy(x, labels: try Tensor(shape: [1], scalars: [1])), wrt: [x])[0].scalars
        #expect(OpsCheck.maxRelativeError(g, [1.0 / 3, -2.0 / 3, 1.0 / 3] as [Double]) < 1e-6)
    }

    @Test func badLabelsAreErrors() throws {
        let logits = Tensor(zeros: [2, 3])
        #expect(throws: TensorError("crossEntropy: label 3.0 of sample 1 is not a class index in 0..<3")) {
            try Tensor.crossEntropy(logits, labels: try Tensor(shape: [2], scalars: [0, 3]))
        }
        #expect(throws: TensorError("crossEntropy: label 0.5 of sample 0 is not a class index in 0..<3")) {
            try Tensor.crossEntropy(logits, labels: try Tensor(shape: [2], scalars: [0.5, 1]))
        }
        #expect(throws: TensorError("crossEntropy: shapes [2, 3] and [3] do not match (expected logits [N, K] and labels [N])")) {
            try Tensor.crossEntropy(logits, labels: Tensor(zeros: [3]))
        }
    }
}
