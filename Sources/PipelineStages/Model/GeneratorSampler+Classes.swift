import Foundation
import NeuralNet
import PipelineGraph
import TensorRuntime

/// Sampling a class-conditional generator.
///
/// A generator with batch norm normalises with its batch's statistics, and it was trained on
/// batches holding every class in equal measure. Its images of one class are therefore taken
/// from batches of the same mix: batch row i gets class (pass * batch + i) mod classes, and the
/// rows of the classes asked for are kept. Asking for one class costs about `classes` times the
/// forward passes of unconditional sampling; in exchange an image looks as it did in training.
/// A generator without batch norm (StyleGAN2) gives every row a class asked for instead.
extension GeneratorSampler {
    /// The generator's class count, or an error when it is not conditional.
    public func conditionalClasses() throws -> Int {
        try Self.classCount(of: generator, options: "--class/--classes")
    }

    /// Checks class ids against the generator: each in range, none twice.
    public func checkClasses(_ classes: [Int]) throws {
        _ = try conditionalClasses()
        for c in classes { try Self.checkClass(c, of: generator, options: "--class/--classes") }
        if Set(classes).count != classes.count { throw StageProblem("a class is listed twice in \(classes.map(String.init).joined(separator: ","))") }
        if classes.isEmpty { throw StageProblem("no class given") }
    }

    /// The labels of pass `pass` of a conditional generator: every class in turn.
    func mixedLabels(pass: Int, rows: Int, classes k: Int) throws -> Tensor {
        try Tensor(shape: [rows], scalars: (0..<rows).map { Float((pass * rows + $0) % k) })
    }

    /// Images of `z`; a conditional generator's rows get mixed classes (pass `pass`), an
    /// unconditional one's are `generate(_:)`'s (truncated in its own latent space if it does that).
    /// A noisy generator's noise comes from `noise` when given (`generate(_:noise:)`).
    func generateMixed(_ z: Tensor, pass: Int, noise: inout PhiloxRandom?) throws -> Tensor {
        let labels = try generator.classCount.map { try mixedLabels(pass: pass, rows: z.shape[0], classes: $0) }
        return try ClassLabels.with(labels) { try generate(z, noise: &noise) }
    }

    func generateMixed(_ z: Tensor, pass: Int) throws -> Tensor {
        var constant: PhiloxRandom? = nil
        return try generateMixed(z, pass: pass, noise: &constant)
    }

    /// `count` images of each class of `classes`, from random latents drawn with `seed`: `body`
    /// gets a class, the index of the first image it is given within that class, and images
    /// `[n, C, H, W]` in [-1, 1], in the order they are made.
    public func classBatches(classes: [Int], count: Int, seed: UInt64, _ body: (Int, Int, Tensor) throws -> Void) throws {
        try checkClasses(classes)
        let k = try conditionalClasses()
        var latents = randomLatents(seed: seed)
        var noiseRandom: PhiloxRandom? = noise == .random ? PhiloxRandom(seed: seed, stream: stableHash("ganflow sample noise")) : nil
        // Rows take the classes in turn: every class of the generator when its images depend on
        // their batch (batch norm), only those asked for otherwise.
        let turn = batchDependent ? Array(0..<k) : classes
        var made = [Int](repeating: 0, count: classes.count)
        var pass = 0
        while made.contains(where: { $0 < count }) {
            let z = latents.next()
            let rows = z.shape[0]
            let rowClasses = (0..<rows).map { turn[(pass * rows + $0) % turn.count] }
            let labels = try Tensor(shape: [rows], scalars: rowClasses.map(Float.init))
            let images = try ClassLabels.with(labels) { try generate(z, noise: &noiseRandom) }
            for (ci, c) in classes.enumerated() where made[ci] < count {
                let mine = (0..<rows).filter { rowClasses[$0] == c }.prefix(count - made[ci])
                guard !mine.isEmpty else { continue }
                let picked = try Tensor.concat(try mine.map { try images.sliced(axis: 0, $0..<($0 + 1)) }, axis: 0)
                try body(c, made[ci], picked)
                made[ci] += mine.count
            }
            pass += 1
        }
    }

    /// A class grid: one row per class of `classes`, `columns` random latents (drawn with `seed`)
    /// shared by every row, so a column shows what one latent becomes in each class. The whole
    /// grid of every class is one batch (balanced, as in training); the rows asked for are kept.
    public func classGrid(classes: [Int], columns: Int, seed: UInt64) throws -> Tensor {
        try checkClasses(classes)
        let k = try conditionalClasses()
        var latents = randomLatents(seed: seed)
        let rowShape = Array(generator.latentShape.dropFirst())
        var drawn: [Tensor] = []
        var have = 0
        while have < columns {
            let z = latents.next()
            drawn.append(z)
            have += z.shape[0]
        }
        let column = try Tensor.concat(drawn, axis: 0).sliced(axis: 0, 0..<columns)
        let z = try Tensor.concat(Array(repeating: column, count: k), axis: 0).reshaped([k * columns] + rowShape)
        let labels = try Tensor(shape: [k * columns], scalars: (0..<(k * columns)).map { Float($0 / columns) })
        let all = try ClassLabels.with(labels) { try generate(z) }
        return try Tensor.concat(try classes.map { try all.sliced(axis: 0, ($0 * columns)..<(($0 + 1) * columns)) }, axis: 0)
    }
}
