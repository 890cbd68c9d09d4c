import Foundation
import PipelineGraph
import TensorRuntime

/// Latents chosen on the command line: seed lists, truncation, latent files, and the paths
/// `ganflow interpolate` walks between them.
public enum LatentPath {
    /// Parses `1,2,3` or ranges `4-7` (both ends included), mixed: `0,5-8,42`. At least one seed.
    public static func parseSeeds(_ text: String) throws -> [UInt64] {
        var seeds: [UInt64] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let part = item.trimmingCharacters(in: .whitespaces)
            let ends = part.split(separator: "-", omittingEmptySubsequences: false)
            if ends.count == 1, let s = UInt64(part) {
                seeds.append(s)
            } else if ends.count == 2, let a = UInt64(ends[0]), let b = UInt64(ends[1]), a <= b, b - a < 10_000 {
                seeds += Array(a...b)
            } else {
                throw PipelineErrors([PipelineError("option.seeds",
                    "--seeds: '\(part)' is not a seed or a range; give non-negative integers and ranges separated by commas, e.g. 1,2,3 or 0,5-8")])
            }
        }
        return seeds
    }

    /// Checks a truncation psi: a number from 0 (the mean latent) to 1 (no truncation).
    public static func checkTruncation(_ psi: Double) throws {
        guard psi.isFinite, (0...1).contains(psi) else {
            throw PipelineErrors([PipelineError("option.truncation",
                "--truncation: \(psi) is not between 0 and 1 (1 keeps latents as drawn, 0 gives the mean latent)")])
        }
    }

    /// Moves latents `[N, dim]` towards the mean latent (0 for N(0, 1) latents) by `psi`.
    public static func truncated(_ latents: Tensor, psi: Float) -> Tensor {
        let out = latents.copy()
        truncate(out, psi: psi)
        return out
    }

    /// Truncates a contiguous tensor of latents in place.
    static func truncate(_ latents: Tensor, psi: Float) {
        guard psi != 1 else { return }
        let p = latents.data
        for i in 0..<latents.count { p[i] *= psi }
    }

    /// The name of the tensor holding latents of `space` in a latent file: `z` or `w`.
    public static func tensorName(_ space: GeneratorSampler.LatentSpace) -> String { space.rawValue }

    static func openArchive(_ path: String) throws -> SafeTensorsArchive {
        do {
            return try SafeTensorsArchive(contentsOf: path)
        } catch {
            throw PipelineErrors([PipelineError("latent.file", file: path, "not a readable safetensors file: \(error)")])
        }
    }

    /// The space of a latent file's latents: w when it holds a tensor `w` and no `z`, else z.
    public static func space(ofFile path: String) throws -> GeneratorSampler.LatentSpace {
        let archive = try openArchive(path)
        return archive.entry(tensorName(.w)) != nil && archive.entry(tensorName(.z)) == nil ? .w : .z
    }

    /// Reads latents `[N, dim]` of `space` from a safetensors file (tensor `z` or `w`, as
    /// `ganflow project` writes), checking `dim` against the generator's.
    public static func readLatents(_ path: String, dimension: Int, space: GeneratorSampler.LatentSpace = .z) throws -> Tensor {
        let archive = try openArchive(path)
        let name = tensorName(space)
        guard archive.entry(name) != nil else {
            throw PipelineErrors([PipelineError("latent.file", file: path,
                "no tensor '\(name)' (latents [N, \(dimension)]); it has \(archive.names.sorted().joined(separator: ", "))")])
        }
        let z = try archive.tensor(name)
        let n = z.shape.first ?? 0
        guard n > 0, z.shape.dropFirst().reduce(1, *) == dimension, z.count == n * dimension else {
            throw PipelineErrors([PipelineError("latent.file", file: path,
                "tensor '\(name)' has shape \(describe(z.shape)); the generator takes \(space == .w ? "w latents" : "latents") [N, \(dimension)]")])
        }
        return try z.reshaped([n, dimension])
    }

    /// Writes latents `[N, dim]` of `space` as a latent file.
    public static func writeLatents(_ latents: Tensor, to path: String, space: GeneratorSampler.LatentSpace = .z,
                                    metadata: [String: String] = [:]) throws {
        var archive = SafeTensorsArchive(metadata: metadata)
        archive.set(tensorName(space), latents)
        try archive.write(to: path)
    }

    /// `frames` latents from each key to the next, both ends included (`[(K - 1) * frames, dim]`
    /// for K keys `[K, dim]`): straight lines, or great circles (`slerp`, for Gaussian latents,
    /// whose mass lies near a sphere) with the norm interpolated linearly.
    public static func interpolate(_ keys: Tensor, frames: Int, slerp: Bool) throws -> Tensor {
        precondition(frames >= 2 && keys.rank == 2 && keys.shape[0] >= 2)
        let (k, d) = (keys.shape[0], keys.shape[1])
        let key = keys.scalars
        let out = Tensor(uninitialized: [(k - 1) * frames, d])
        for s in 0..<(k - 1) {
            let a = Array(key[(s * d)..<((s + 1) * d)]), b = Array(key[((s + 1) * d)..<((s + 2) * d)])
            for f in 0..<frames {
                let t = Float(f) / Float(frames - 1)
                let row = out.data + (s * frames + f) * d
                let v = slerp ? spherical(a, b, t) : zip(a, b).map { $0 + t * ($1 - $0) }
                for i in 0..<d { row[i] = v[i] }
            }
        }
        return out
    }

    static func spherical(_ a: [Float], _ b: [Float], _ t: Float) -> [Float] {
        let na = norm(a), nb = norm(b)
        guard na > 0, nb > 0 else { return zip(a, b).map { $0 + t * ($1 - $0) } }
        let cosine = max(-1, min(1, zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } / (na * nb)))
        let omega = acos(cosine)
        let length = na + t * (nb - na)
        guard omega > 1e-4 else { return zip(a, b).map { ($0 / na + t * ($1 / nb - $0 / na)) * length } }
        let wa = sin((1 - t) * omega) / sin(omega), wb = sin(t * omega) / sin(omega)
        return zip(a, b).map { (wa * $0 / na + wb * $1 / nb) * length }
    }

    static func norm(_ v: [Float]) -> Float { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }
}
