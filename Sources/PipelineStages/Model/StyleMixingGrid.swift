import NeuralNet
import PipelineGraph
import TensorRuntime

/// The style-mixing figure of StyleGAN: a row of "fine" source images along the top, a column
/// of "coarse" source images down the left, and in cell (r, c) the image whose first `crossover`
/// style inputs (the coarse layers) come from row r's latent and the rest from column c's.
public enum StyleMixingGrid {
    /// `(n + 1)^2` images in row-major order for a grid of `n + 1` columns; the top-left cell is
    /// black. Row latents come from `seed`, column latents from `seed + 1`, each truncated by the
    /// sampler's psi in the generator's own latent space.
    public static func images(_ sampler: GeneratorSampler, count n: Int, crossover: Int, seed: UInt64) throws -> Tensor {
        guard let g = sampler.generator as? any StyleMixingGeneratorStage else {
            throw PipelineErrors([PipelineError("option.mix", "--mix: the generator does not take per-layer styles; style mixing needs a generator.stylegan2")])
        }
        if let k = g.classCount, sampler.chosenClass == nil {
            throw PipelineErrors([PipelineError("option.mix", "--mix: the generator is class-conditional (\(k) classes): give the class of the grid with --class K")])
        }
        guard (1..<g.styleInputs).contains(crossover) else {
            throw PipelineErrors([PipelineError("option.mix",
                "--mix: crossover \(crossover) is not between 1 and \(g.styleInputs - 1) (the generator has \(g.styleInputs) style inputs)")])
        }
        func latents(_ seed: UInt64) throws -> Tensor {
            var r = sampler.randomLatents(seed: seed)
            var rows: [Tensor] = []
            var have = 0
            while have < n {
                let z = r.next()
                rows.append(z)
                have += z.shape[0]
            }
            let all = try Tensor.concat(rows, axis: 0)
            return try all.sliced(axis: 0, 0..<n).copy().reshaped([n, sampler.latentDimension])
        }
        // Every image of the grid is of the chosen class (if the generator takes one).
        return try ClassLabels.with(try sampler.chosenLabels(n)) { try grid(g, sampler, latents(seed), latents(seed + 1), n: n, crossover: crossover) }
    }

    static func grid(_ g: any StyleMixingGeneratorStage, _ sampler: GeneratorSampler, _ coarse: Tensor, _ fine: Tensor, n: Int, crossover: Int) throws -> Tensor {
        let psi = sampler.truncation, ema = sampler.movingAverage
        let top = try g.sampleForward(fine, movingAverage: ema, truncation: psi)
        let left = try g.sampleForward(coarse, movingAverage: ema, truncation: psi)
        let cell = Array(top.shape.dropFirst())
        var tiles: [Tensor] = [Tensor(repeating: -1, shape: [1] + cell), top.detached()]
        for r in 0..<n {
            let row = try coarse.sliced(axis: 0, r..<(r + 1)).expanded(to: [n, sampler.latentDimension])
            tiles.append(try left.sliced(axis: 0, r..<(r + 1)).detached())
            tiles.append(try g.mixedImages(coarse: row, fine: fine, crossover: crossover, movingAverage: ema, truncation: psi))
        }
        return try Tensor.concat(tiles, axis: 0)
    }
}
