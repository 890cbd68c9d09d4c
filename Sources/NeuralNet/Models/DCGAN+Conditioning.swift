import TensorRuntime

/// How `DCGAN` and `MLPGAN` stacks take a class label (`ClassConditioning`): the pieces their
/// builders put in place of the unconditional ones.
extension DCGAN {
    /// `features` with the first entry widened by what `concat` joins to the input; an error for
    /// a method the network cannot take.
    static func conditionedInput(_ features: [Int], _ c: ClassConditioning?, norm: Normalization, generator: Bool) throws -> [Int] {
        guard let c else { return features }
        let allowed = generator ? ClassConditioning.generatorMethods : ClassConditioning.discriminatorMethods
        guard allowed.contains(c.method) else {
            throw TensorError("conditioning '\(c.method.rawValue)' is for \(generator ? "discriminators" : "generators"); a \(generator ? "generator" : "discriminator") takes \(allowed.map(\.rawValue).joined(separator: ", "))")
        }
        guard c.classes >= 2 else { throw TensorError("a class-conditional network needs at least 2 classes, found \(c.classes)") }
        if c.method == .cbn && norm != .batch {
            throw TensorError("conditioning 'cbn' conditions the batch norms: it needs norm 'batch', found '\(norm.rawValue)'")
        }
        var out = features
        if c.method == .concat { out[0] += c.classes }
        return out
    }

    /// The layer joining the class to the input for `concat` (a learned embedding of `classes`
    /// features in G, the one-hot class in D), or nil.
    static func inputLayer(_ c: ClassConditioning, generator: Bool, rng: inout PhiloxRandom) throws -> (any Layer)? {
        c.method == .concat ? LabelConcat(classes: c.classes, embedding: generator ? c.classes : nil, rng: &rng) : nil
    }

    /// G's batch norm: conditional under `cbn`.
    static func batchNorm(_ features: Int, _ c: ClassConditioning?) -> any Layer {
        if let c, c.method == .cbn { return ConditionalBatchNorm(features, classes: c.classes) }
        return BatchNorm(features)
    }

    /// D's last layer `psi` inside a `ClassHead` for `projection`, `ac` and `projection+ac`, or nil.
    static func head(_ c: ClassConditioning?, psi: any Layer, features: Int, rng: inout PhiloxRandom) throws -> (any Layer)? {
        switch c?.method {
        case .projection?: return try ClassHead(.projection, psi: psi, features: features, classes: c!.classes, rng: &rng)
        case .ac?: return try ClassHead(.auxiliary, psi: psi, features: features, classes: c!.classes, rng: &rng)
        case .projectionAC?: return try ClassHead(.projectionAuxiliary, psi: psi, features: features, classes: c!.classes, rng: &rng)
        default: return nil
        }
    }
}
