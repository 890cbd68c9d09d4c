import TensorRuntime

/// Lays a batch of generated samples out as one image, like torchvision's `make_grid`.
public enum SampleGrid {
    /// Composes an `[N, C, H, W]` batch (C = 1, 3 or 4) in `range` into one image with `nrow` images per
    /// row, `padding` pixels between and around them filled with `padValue` (in [0, 1] output units).
    ///
    /// The grid is `min(nrow, N)` images wide and `ceil(N / nrow)` high; unused cells stay `padValue`.
    /// Values are mapped to [0, 1] and clamped.
    public static func compose(
        _ batch: Tensor, nrow: Int = 8, padding: Int = 2, padValue: Float = 0, range: PixelRange = .symmetric
    ) throws -> Image {
        let s = batch.shape
        guard s.count == 4, [1, 3, 4].contains(s[1]), s[0] > 0 else {
            throw TensorError("a sample grid needs an [N, C, H, W] batch with N > 0 and C of 1, 3 or 4, not \(describe(s))")
        }
        guard nrow > 0, padding >= 0 else { throw TensorError("sample grid: nrow must be positive and padding not negative") }
        let (n, c, h, w) = (s[0], s[1], s[2], s[3])
        let columns = min(nrow, n), rows = (n + columns - 1) / columns
        let gridWidth = columns * (w + padding) + padding, gridHeight = rows * (h + padding) + padding
        var grid = Image(width: gridWidth, height: gridHeight, channels: c, repeating: padValue)
        let values = batch.scalars
        for k in 0..<n {
            let top = padding + (k / columns) * (h + padding), left = padding + (k % columns) * (w + padding)
            for ch in 0..<c {
                for y in 0..<h {
                    let from = ((k * c + ch) * h + y) * w
                    let to = (ch * gridHeight + top + y) * gridWidth + left
                    for x in 0..<w { grid.pixels[to + x] = min(max(range.toUnit(values[from + x]), 0), 1) }
                }
            }
        }
        return grid
    }

    /// Composes `batch` (see `compose`) and writes it to `path` as a PNG.
    public static func write(
        _ batch: Tensor, to path: String, nrow: Int = 8, padding: Int = 2, padValue: Float = 0,
        range: PixelRange = .symmetric, bitDepth: PNG.BitDepth = .eight
    ) throws {
        try PNG.write(compose(batch, nrow: nrow, padding: padding, padValue: padValue, range: range), to: path, bitDepth: bitDepth)
    }
}
