/// How far apart two arrays of numbers are, for tests: the largest |a - b|, or with
/// `relativeTo: floor` the largest |a - b| / max(floor, |b|).
///
/// Arrays of different lengths are infinitely far apart (`zip` would silently compare the common
/// prefix), and so are a NaN or an infinity against anything but the same value; an empty pair is
/// 0 apart.
public func largestDifference<T: BinaryFloatingPoint>(_ a: [T], _ b: [T], relativeTo floor: T? = nil) -> T {
    guard a.count == b.count else { return .infinity }
    var worst: T = 0
    for (x, y) in zip(a, b) {
        if x.isNaN || y.isNaN {
            if !(x.isNaN && y.isNaN) { return .infinity }
            continue
        }
        if x.isInfinite || y.isInfinite {
            if x != y { return .infinity }
            continue
        }
        let d = abs(x - y)
        worst = max(worst, floor.map { d / max($0, abs(y)) } ?? d)
    }
    return worst
}

/// `largestDifference` of a result computed in `Float` against a reference computed in `Double`.
public func largestDifference(_ a: [Float], _ b: [Double], relativeTo floor: Double? = nil) -> Double {
    largestDifference(a.map(Double.init), b, relativeTo: floor)
}
