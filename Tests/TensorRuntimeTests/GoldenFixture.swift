import Foundation
import TensorRuntime

/// Reference values computed by PyTorch (`Scripts/golden/nnops.py`), stored in
/// `Fixtures/golden/nnops.json`.
struct GoldenFixture: Decodable {
    struct Stored: Decodable {
        var shape: [Int]
        var values: [Float]
    }

    struct Case: Decodable {
        var params: [String: Double]
        var tensors: [String: Stored]

        /// A fresh tensor of a stored value (a new leaf each call).
        func tensor(_ name: String) throws -> Tensor {
            guard let s = tensors[name] else { throw TensorError("golden fixture: no tensor '\(name)'") }
            return try Tensor(shape: s.shape, scalars: s.values)
        }

        func int(_ name: String) -> Int { Int(params[name]!) }
    }

    var cases: [String: Case]

    static func load(filePath: String = #filePath) throws -> GoldenFixture {
        let url = URL(fileURLWithPath: filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/golden/nnops.json")
        return try JSONDecoder().decode(GoldenFixture.self, from: Data(contentsOf: url))
    }

    func named(_ name: String) throws -> Case {
        guard let c = cases[name] else { throw TensorError("golden fixture: no case '\(name)'") }
        return c
    }

    /// The largest |a - b| / max(1, |b|) between two tensors of equal shape, or infinity when the
    /// shapes differ.
    static func difference(_ a: Tensor, _ b: Tensor) -> Float {
        guard a.shape == b.shape else { return .infinity }
        return zip(a.scalars, b.scalars).reduce(0) { max($0, abs($1.0 - $1.1) / max(1, abs($1.1))) }
    }
}
