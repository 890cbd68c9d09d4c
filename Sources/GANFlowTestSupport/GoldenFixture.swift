import Foundation
import TensorRuntime

/// Reference values computed by PyTorch (`Scripts/golden/nnops.py`, `Scripts/golden/stylegan2.py`),
/// stored as JSON in `Fixtures/golden/`.
public struct GoldenFixture: Decodable, Sendable {
    public struct Stored: Decodable, Sendable {
        public var shape: [Int]
        public var values: [Float]
    }

    public struct Case: Decodable, Sendable {
        public var params: [String: Double]
        public var tensors: [String: Stored]

        /// A fresh tensor of a stored value (a new leaf each call).
        public func tensor(_ name: String) throws -> Tensor {
            guard let s = tensors[name] else { throw TensorError("golden fixture: no tensor '\(name)'") }
            return try Tensor(shape: s.shape, scalars: s.values)
        }

        public func int(_ name: String) -> Int { Int(params[name]!) }
    }

    public var cases: [String: Case]

    /// `Fixtures/golden/<file>`: nnops.json by default, stylegan2.json for StyleGAN2's ops.
    public static func load(_ file: String = "nnops.json", filePath: String = #filePath) throws -> GoldenFixture {
        let url = URL(fileURLWithPath: filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/golden/" + file)
        return try JSONDecoder().decode(GoldenFixture.self, from: Data(contentsOf: url))
    }

    public func named(_ name: String) throws -> Case {
        guard let c = cases[name] else { throw TensorError("golden fixture: no case '\(name)'") }
        return c
    }

    /// The largest |a - b| / max(1, |b|) between two tensors of equal shape, or infinity when the
    /// shapes differ.
    public static func difference(_ a: Tensor, _ b: Tensor) -> Float {
        guard a.shape == b.shape else { return .infinity }
        return zip(a.scalars, b.scalars).reduce(0) { max($0, abs($1.0 - $1.1) / max(1, abs($1.1))) }
    }
}
