import TensorRuntime

/// A preprocessing request that does not fit the image (a crop larger than it, a bad size).
public struct TransformError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension Image {
    // MARK: - resize

    /// This image resized to `width` x `height`.
    ///
    /// Each axis is resampled on its own: shrinking averages the exact area each output pixel covers
    /// (fractional overlaps weighted, as OpenCV's INTER_AREA and PIL's BOX), enlarging interpolates
    /// bilinearly with PyTorch's `align_corners=False` convention (sample centres at `i + 0.5`, edges
    /// clamped). Equal sizes leave the axis unchanged.
    public func resized(width newWidth: Int, height newHeight: Int) throws -> Image {
        guard newWidth > 0, newHeight > 0 else { throw TransformError("resize to \(newWidth)x\(newHeight): sizes must be positive") }
        guard width > 0, height > 0 else { throw TransformError("resize of an empty \(width)x\(height) image") }
        if newWidth == width && newHeight == height { return self }
        let horizontal = AxisWeights(input: width, output: newWidth)
        let vertical = AxisWeights(input: height, output: newHeight)
        var out = Image(width: newWidth, height: newHeight, channels: channels, repeating: 0)
        var rows = [Float](repeating: 0, count: height * newWidth)
        pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                rows.withUnsafeMutableBufferPointer { tmp in
                    for c in 0..<channels {
                        let plane = src.baseAddress! + c * height * width
                        for y in 0..<height {
                            horizontal.apply(plane + y * width, stride: 1, into: tmp.baseAddress! + y * newWidth, outStride: 1)
                        }
                        let target = dst.baseAddress! + c * newHeight * newWidth
                        for x in 0..<newWidth {
                            vertical.apply(tmp.baseAddress! + x, stride: newWidth, into: target + x, outStride: newWidth)
                        }
                    }
                }
            }
        }
        return out
    }

    // MARK: - crop and pad

    /// The `width` x `height` region whose top-left corner is at row `top`, column `left`.
    public func cropped(top: Int, left: Int, width w: Int, height h: Int) throws -> Image {
        guard top >= 0, left >= 0, w > 0, h > 0, top + h <= height, left + w <= width else {
            throw TransformError("crop of \(w)x\(h) at row \(top), column \(left) does not fit in a \(width)x\(height) image")
        }
        var out = Image(width: w, height: h, channels: channels, repeating: 0)
        for c in 0..<channels {
            for y in 0..<h {
                let from = (c * height + top + y) * width + left
                let to = (c * h + y) * w
                out.pixels.replaceSubrange(to..<(to + w), with: pixels[from..<(from + w)])
            }
        }
        return out
    }

    /// The centred `width` x `height` region; when the margin is odd the extra pixel is cut from the
    /// bottom and right.
    public func centerCropped(width w: Int, height h: Int) throws -> Image {
        guard w <= width, h <= height else {
            throw TransformError("center crop of \(w)x\(h) does not fit in a \(width)x\(height) image")
        }
        return try cropped(top: (height - h) / 2, left: (width - w) / 2, width: w, height: h)
    }

    /// A `width` x `height` region at an offset drawn uniformly from all that fit, using `rng`.
    public func randomCropped(width w: Int, height h: Int, using rng: inout PhiloxRandom) throws -> Image {
        guard w > 0, h > 0, w <= width, h <= height else {
            throw TransformError("random crop of \(w)x\(h) does not fit in a \(width)x\(height) image")
        }
        let top = uniformInt(below: height - h + 1, &rng)
        let left = uniformInt(below: width - w + 1, &rng)
        return try cropped(top: top, left: left, width: w, height: h)
    }

    /// This image flipped left to right (each row reversed).
    public func mirrored() -> Image {
        var out = self
        out.pixels.withUnsafeMutableBufferPointer { dst in
            pixels.withUnsafeBufferPointer { src in
                for row in 0..<(channels * height) {
                    let base = row * width
                    for x in 0..<width { dst[base + x] = src[base + width - 1 - x] }
                }
            }
        }
        return out
    }

    /// This image with borders of the given widths filled with `value`.
    public func padded(top: Int, left: Int, bottom: Int, right: Int, value: Float = 0) throws -> Image {
        guard top >= 0, left >= 0, bottom >= 0, right >= 0 else {
            throw TransformError("padding \(top), \(left), \(bottom), \(right) (top, left, bottom, right) must not be negative")
        }
        let (w, h) = (width + left + right, height + top + bottom)
        var out = Image(width: w, height: h, channels: channels, repeating: value)
        for c in 0..<channels {
            for y in 0..<height {
                let from = (c * height + y) * width
                let to = (c * h + top + y) * w + left
                out.pixels.replaceSubrange(to..<(to + width), with: pixels[from..<(from + width)])
            }
        }
        return out
    }

    /// This image centred in a `width` x `height` canvas of `value` (28 -> 32 pads 2 on each side);
    /// an odd margin puts the extra pixel at the bottom and right.
    public func padded(toWidth w: Int, height h: Int, value: Float = 0) throws -> Image {
        guard w >= width, h >= height else {
            throw TransformError("cannot pad a \(width)x\(height) image to the smaller \(w)x\(h)")
        }
        let top = (h - height) / 2, left = (w - width) / 2
        return try padded(top: top, left: left, bottom: h - height - top, right: w - width - left, value: value)
    }

    // MARK: - channels

    /// This image with `channels` channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA).
    ///
    /// Gray becomes RGB by copying; RGB becomes gray by ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B,
    /// as PIL's `convert("L")`) on the stored values; an alpha channel is dropped or added as opaque.
    public func converted(toChannels target: Int) throws -> Image {
        guard (1...4).contains(target) else { throw TransformError("\(target) channels: images have 1 to 4") }
        if target == channels { return self }
        let n = planeSize
        let sourceColor = channels >= 3 ? 3 : 1, targetColor = target >= 3 ? 3 : 1
        let sourceAlpha = channels == 2 || channels == 4, targetAlpha = target == 2 || target == 4
        var out = Image(width: width, height: height, channels: target, repeating: 1)
        func plane(_ c: Int) -> ArraySlice<Float> { pixels[(c * n)..<((c + 1) * n)] }
        switch (sourceColor, targetColor) {
        case (1, 1), (3, 3):
            out.pixels.replaceSubrange(0..<(sourceColor * n), with: pixels[0..<(sourceColor * n)])
        case (1, 3):
            for c in 0..<3 { out.pixels.replaceSubrange((c * n)..<((c + 1) * n), with: plane(0)) }
        default:
            for i in 0..<n { out.pixels[i] = 0.299 * pixels[i] + 0.587 * pixels[n + i] + 0.114 * pixels[2 * n + i] }
        }
        if targetAlpha && sourceAlpha {
            out.pixels.replaceSubrange((targetColor * n)..<((targetColor + 1) * n), with: plane(sourceColor))
        }
        return out
    }
}

/// Per-output-sample weights of a 1-D resampling.
struct AxisWeights {
    /// First input index contributing to each output sample.
    var starts: [Int]
    /// Weights of consecutive inputs from `starts[i]`, for each output sample.
    var weights: [[Float]]

    init(input n: Int, output m: Int) {
        starts = []
        weights = []
        starts.reserveCapacity(m)
        weights.reserveCapacity(m)
        let scale = Double(n) / Double(m)
        for i in 0..<m {
            if m < n {
                // Area: output i covers input [i * scale, (i + 1) * scale).
                let lo = Double(i) * scale, hi = Double(i + 1) * scale
                let first = Int(lo.rounded(.down)), last = min(Int(hi.rounded(.up)), n) - 1
                var w = [Float]()
                for j in first...last {
                    let overlap = min(hi, Double(j + 1)) - max(lo, Double(j))
                    w.append(Float(overlap / scale))
                }
                starts.append(first)
                weights.append(w)
            } else {
                let source = max((Double(i) + 0.5) * scale - 0.5, 0)
                let j0 = min(Int(source.rounded(.down)), n - 1)
                let l = Float(source - Double(j0))
                if j0 + 1 < n && l > 0 {
                    starts.append(j0)
                    weights.append([1 - l, l])
                } else {
                    starts.append(j0)
                    weights.append([1])
                }
            }
        }
    }

    func apply(_ source: UnsafePointer<Float>, stride: Int, into out: UnsafeMutablePointer<Float>, outStride: Int) {
        for i in 0..<starts.count {
            var sum: Float = 0
            let base = source + starts[i] * stride
            let w = weights[i]
            for k in 0..<w.count { sum += w[k] * base[k * stride] }
            out[i * outStride] = sum
        }
    }
}

/// A uniform integer in `0..<bound` from `rng` (Lemire's multiply-shift; the bias is below 2^-32 * bound).
func uniformInt(below bound: Int, _ rng: inout PhiloxRandom) -> Int {
    Int((UInt64(rng.next()) &* UInt64(bound)) >> 32)
}
