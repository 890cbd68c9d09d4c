import Foundation
import PipelineGraph
import TensorRuntime

/// The augmentations of DiffAugment (Zhao et al., 2020) and ADA's horizontal flip, applied to an
/// image batch `[N, C, H, W]` in [-1, 1] with the runtime's differentiable ops, so gradients reach
/// generated images through them.
///
/// Each operation is applied to each image with probability `p` (ADA); an image it is not applied
/// to gets the operation's identity parameters. With p = 1 this is DiffAugment.
struct AugmentPolicy: Sendable {
    enum Operation: String, CaseIterable, Sendable {
        /// Mirror left to right with probability 1/2.
        case flip
        /// Add a per-image offset drawn from [-0.5, 0.5).
        case brightness
        /// Scale each pixel's distance from its channel mean by a factor from [0, 2).
        case saturation
        /// Scale the distance from the image mean by a factor from [0.5, 1.5).
        case contrast
        /// Shift by whole pixels, up to `translation` of the size each way, filling with zeros.
        case translation
        /// Zero a square of `cutout` of the size at a random centre.
        case cutout
    }

    /// DiffAugment's group names.
    static let groups: [String: [Operation]] = ["color": [.brightness, .saturation, .contrast]]

    let operations: [Operation]
    let translation: Double
    let cutout: Double

    /// Parses `"color,translation,cutout"`; a problem names the unknown word.
    init(_ text: String, translation: Double, cutout: Double, key: String = "policy") throws {
        var ops: [Operation] = []
        let names = AugmentPolicy.groups.keys.sorted() + Operation.allCases.map(\.rawValue)
        for word in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !word.isEmpty {
            if let group = AugmentPolicy.groups[word] {
                ops += group
            } else if let op = Operation(rawValue: word) {
                ops.append(op)
            } else {
                throw StageProblem(key: key, "unknown augmentation '\(word)'; known: \(names.joined(separator: ", "))",
                                   suggestion: didYouMean(word, among: names))
            }
        }
        // Applied in one fixed order whatever the text's order: flips, colour, then geometry.
        operations = Operation.allCases.filter(ops.contains)
        self.translation = translation
        self.cutout = cutout
    }

    /// `x` augmented with draws from `rng`, each operation applied to each image with probability `p`.
    func apply(_ x: Tensor, p: Double, using rng: inout PhiloxRandom) throws -> Tensor {
        guard x.rank == 4, p > 0, !operations.isEmpty else { return x }
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        var y = x
        var flips = [Bool](repeating: false, count: n)
        var shifts = [(dy: Int, dx: Int)](repeating: (0, 0), count: n)
        func chosen() -> [Bool] { (0..<n).map { _ in Double(rng.nextUniform()) < p } }
        func perImage(_ values: [Float]) throws -> Tensor { try Tensor(shape: [n, 1, 1, 1], scalars: values) }
        for op in operations {
            let on = chosen()
            switch op {
            case .flip:
                flips = on.map { $0 && rng.nextUniform() < 0.5 }
            case .brightness:
                let offsets = on.map { $0 ? rng.nextUniform() - 0.5 : 0 }
                y = try y + perImage(offsets)
            case .saturation:
                let factors = on.map { $0 ? rng.nextUniform() * 2 : 1 }
                let mean = try y.mean(axes: [1], keepDims: true)
                y = try (y - mean) * perImage(factors) + mean
            case .contrast:
                let factors = on.map { $0 ? rng.nextUniform() + 0.5 : 1 }
                let mean = try y.mean(axes: [1, 2, 3], keepDims: true)
                y = try (y - mean) * perImage(factors) + mean
            case .translation:
                let sy = Int((Double(h) * translation + 0.5).rounded(.down)), sx = Int((Double(w) * translation + 0.5).rounded(.down))
                shifts = on.map { $0 ? (Int(rng.next() % UInt32(2 * sy + 1)) - sy, Int(rng.next() % UInt32(2 * sx + 1)) - sx) : (0, 0) }
            case .cutout:
                if flips.contains(true) || shifts.contains(where: { $0 != (0, 0) }) {
                    y = ElementMap.flipAndShift(y.shape, flips: flips, shifts: shifts).gather(y)
                    flips = [Bool](repeating: false, count: n)
                    shifts = [(dy: Int, dx: Int)](repeating: (0, 0), count: n)
                }
                y = try y * cutoutMask(on, h: h, w: w, using: &rng)
            }
        }
        if flips.contains(true) || shifts.contains(where: { $0 != (0, 0) }) {
            y = ElementMap.flipAndShift(y.shape, flips: flips, shifts: shifts).gather(y)
        }
        return y
    }

    /// `[N, 1, H, W]` ones with a zero square (clipped at the borders) in each chosen image.
    private func cutoutMask(_ on: [Bool], h: Int, w: Int, using rng: inout PhiloxRandom) throws -> Tensor {
        let n = on.count
        let ch = Int((Double(h) * cutout + 0.5).rounded(.down)), cw = Int((Double(w) * cutout + 0.5).rounded(.down))
        var mask = [Float](repeating: 1, count: n * h * w)
        for b in 0..<n where on[b] {
            // The square's centre is anywhere in the image; the square may stick out.
            let cy = Int(rng.next() % UInt32(h + (1 - ch % 2))), cx = Int(rng.next() % UInt32(w + (1 - cw % 2)))
            let top = max(cy - ch / 2, 0), bottom = min(cy - ch / 2 + ch, h)
            let left = max(cx - cw / 2, 0), right = min(cx - cw / 2 + cw, w)
            guard top < bottom, left < right else { continue }
            for yy in top..<bottom {
                for xx in left..<right { mask[(b * h + yy) * w + xx] = 0 }
            }
        }
        return try Tensor(shape: [n, 1, h, w], scalars: mask)
    }
}
