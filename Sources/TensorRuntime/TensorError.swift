/// A problem with tensor shapes or values that a user's input can cause.
public struct TensorError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    static func shapeMismatch(_ op: String, _ a: [Int], _ b: [Int], _ detail: String = "") -> TensorError {
        TensorError("\(op): shapes \(describe(a)) and \(describe(b)) do not match" + (detail.isEmpty ? "" : " (\(detail))"))
    }
}

/// Renders a shape as `[64, 1, 28, 28]`.
public func describe(_ shape: [Int]) -> String {
    "[" + shape.map(String.init).joined(separator: ", ") + "]"
}
