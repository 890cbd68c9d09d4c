import PipelineGraph
import TensorRuntime

/// Checks shared by the metric stages.
enum MetricInputs {
    /// `real` and `fake` are feature sets [n, d] and [m, d] with at least `minimum` rows each.
    static func checkFeaturePair(_ inputs: [String: PortType], minimum: Int = 2) throws {
        for port in ["real", "fake"] {
            guard let s = inputs[port]?.shape, s.count == 2 else {
                throw StageProblem(key: port, "expected features [n, d] (a features stage's '\(port)'), found \(inputs[port].map { "\($0)" } ?? "nothing")")
            }
            guard s[0] >= minimum else {
                throw StageProblem(key: port, "expected at least \(minimum) feature vectors, found \(s[0])")
            }
        }
        let d1 = inputs["real"]!.shape![1], d2 = inputs["fake"]!.shape![1]
        guard d1 == d2 else {
            throw StageProblem(key: "fake", "features of size \(d2) cannot be compared with real features of size \(d1)")
        }
    }

    /// A value's error as a problem of the stage.
    static func measuring<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as TensorError {
            throw StageProblem(e.message)
        }
    }
}

/// Remembers one value computed from one tensor (the reference features, which a features stage
/// computes once and hands out again), so it is computed once too.
final class ReferenceCache<Value>: @unchecked Sendable {
    private var key: Tensor?
    private var value: Value?

    func value(for tensor: Tensor, _ compute: () throws -> Value) rethrows -> Value {
        if let key, key === tensor, let value { return value }
        let v = try compute()
        key = tensor
        value = v
        return v
    }
}
