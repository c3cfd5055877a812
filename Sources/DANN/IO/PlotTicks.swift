import Foundation

/// Axis ticks at "nice" values (1, 2 or 5 times a power of ten) and their labels.
public enum PlotTicks {
    /// The nice step for splitting `span` into about `count` intervals.
    public static func niceStep(span: Double, count: Int) -> Double {
        guard span > 0, span.isFinite, count > 0 else { return 1 }
        let raw = span / Double(count)
        let magnitude = pow(10, floor(log10(raw)))
        let fraction = raw / magnitude
        // Nearest of 1, 2, 5, 10 (Heckbert's "nice numbers"), so the tick count stays close to `count`.
        let nice: Double = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10
        return nice * magnitude
    }

    /// Ticks covering `lower...upper` with about `count` intervals. With `extend`, the range grows
    /// outwards to the neighbouring ticks (for a y axis); otherwise only ticks inside are returned.
    public static func linear(lower: Double, upper: Double, count: Int = 5, extend: Bool)
        -> (range: ClosedRange<Double>, ticks: [Double], step: Double) {
        var lower = lower, upper = upper
        if !(upper > lower) {
            // A flat series still needs a visible band around its value.
            let pad = lower == 0 ? 1 : abs(lower) * 0.1
            lower -= pad
            upper += pad
        }
        let step = niceStep(span: upper - lower, count: count)
        let first = extend ? floor(lower / step + 1e-9) : ceil(lower / step - 1e-9)
        let last = extend ? ceil(upper / step - 1e-9) : floor(upper / step + 1e-9)
        // Multiplying integers by the step (rather than adding steps) keeps 0.1·3 from drifting.
        let ticks = stride(from: first, through: last, by: 1).map { $0 * step }
        let range = extend ? (first * step)...(last * step) : lower...upper
        return (range, ticks, step)
    }

    /// Decades covering the positive `lower...upper`, as exponents of ten (log10 axis space).
    public static func logarithmic(lower: Double, upper: Double)
        -> (range: ClosedRange<Double>, ticks: [Double], minorTicks: [Double]) {
        var low = floor(log10(lower) + 1e-9), high = ceil(log10(upper) - 1e-9)
        if high <= low { high = low + 1 }
        if !low.isFinite || !high.isFinite { (low, high) = (0, 1) }
        let decades = Int(high - low)
        let every = max(1, Int((Double(decades) / 6).rounded(.up)))
        let ticks = stride(from: low, through: high, by: Double(every)).map { $0 }
        var minor: [Double] = []
        if decades <= 4 {
            for decade in stride(from: low, to: high, by: 1) {
                for m in 2...9 { minor.append(decade + log10(Double(m))) }
            }
        }
        return (low...high, ticks, minor)
    }

    /// The label for a linear tick `value` on an axis whose ticks are `step` apart.
    public static func label(_ value: Double, step: Double) -> String {
        let value = abs(value) < step * 1e-6 ? 0 : value
        let magnitude = max(abs(value), step)
        if magnitude >= 1e6 || magnitude < 1e-3 {
            return scientific(value)
        }
        let decimals = max(0, Int(-floor(log10(step) + 1e-9)))
        return String(format: "%.\(decimals)f", value)
    }

    /// The label for the decade tick 10^`exponent` on a log axis.
    public static func decadeLabel(_ exponent: Double) -> String {
        let e = Int(exponent.rounded())
        if (-3...4).contains(e) {
            return e >= 0 ? String(Int(pow(10, Double(e)))) : String(format: "%.\(-e)f", pow(10, Double(e)))
        }
        return "1e\(e)"
    }

    /// "2.5e-05" style, trimmed to "2.5e-5".
    static func scientific(_ value: Double) -> String {
        if value == 0 { return "0" }
        let exponent = Int(floor(log10(abs(value))))
        var mantissa = String(format: "%.2f", value / pow(10, Double(exponent)))
        while mantissa.hasSuffix("0") { mantissa.removeLast() }
        if mantissa.hasSuffix(".") { mantissa.removeLast() }
        return "\(mantissa)e\(exponent)"
    }
}
