/// Max pooling over independent planes (any layout whose H×W planes are contiguous).
/// Padding counts as −∞ and ties go to the first maximum in row-major window order, as in PyTorch.
/// `rectify` applies a ReLU to each pooled value (the fused ReLU before the pooling); its backward then
/// passes a gradient only where the pooled output is positive (`gate`).
public enum MaxPoolKernel {
    public static func forward(
        _ input: UnsafePointer<Float>, planes: Int, geometry g: ConvGeometry,
        output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>, rectify: Bool = false
    ) {
        if g.kernel == 2, g.stride == 2, g.padding == 0, g.outWidth >= 8 {
            forward2x2(input, planes: planes, geometry: g, output: output, argmax: argmax, rectify: rectify)
            return
        }
        let oh = g.outHeight, ow = g.outWidth, w = g.width, k = g.kernel
        // Output columns [ox0, ox1) and rows [oy0, oy1) whose window lies wholly inside the plane take
        // the unclamped path, with the window loops fixed-length and the max a branch-free select.
        let (ox0, ox1) = Im2Col.validRange(offset: -g.padding, stride: g.stride, count: ow, limit: g.width - k + 1)
        let (oy0, oy1) = Im2Col.validRange(offset: -g.padding, stride: g.stride, count: oh, limit: g.height - k + 1)
        for p in 0..<planes {
            let src = input + p * g.planeSize
            let dst = output + p * oh * ow
            let arg = argmax + p * oh * ow
            for oy in 0..<oh {
                let y0 = oy * g.stride - g.padding
                let rowInside = oy >= oy0 && oy < oy1
                // 3×3 windows at stride 2 (the seed networks): the columns whose windows lie inside the plane's
                // width eight outputs at a time, in the top and bottom rows too (their window rows clipped).
                let vectorized = k == 3 && g.stride == 2 && ox1 - ox0 >= 8
                if vectorized && rowInside {
                    // A literal row count, so that the inlined copy unrolls its row loop (a variable one ran 1.4×
                    // slower on the seed's first pooling).
                    interior3x3s2(src, width: w, top: y0, rows: 3, padding: g.padding, columns: ox0..<ox1,
                                  output: dst + oy * ow, argmax: arg + oy * ow, rectify: rectify)
                } else if vectorized {
                    let top = max(y0, 0)
                    interior3x3s2(src, width: w, top: top, rows: min(y0 + 3, g.height) - top, padding: g.padding,
                                  columns: ox0..<ox1, output: dst + oy * ow, argmax: arg + oy * ow, rectify: rectify)
                }
                for ox in 0..<ow where !(vectorized && ox >= ox0 && ox < ox1) {
                    let x0 = ox * g.stride - g.padding
                    if rowInside && ox >= ox0 && ox < ox1 {
                        var window = Window(src, y0 * w + x0)
                        switch k {
                        case 2:
                            window.consider(y0 * w + x0 + 1)
                            window.consider((y0 + 1) * w + x0); window.consider((y0 + 1) * w + x0 + 1)
                        case 3:
                            let r0 = y0 * w + x0, r1 = r0 + w, r2 = r1 + w
                            window.consider(r0 + 1); window.consider(r0 + 2)
                            window.consider(r1); window.consider(r1 + 1); window.consider(r1 + 2)
                            window.consider(r2); window.consider(r2 + 1); window.consider(r2 + 2)
                        default:
                            for dy in 0..<k {
                                for dx in 0..<k where dy > 0 || dx > 0 { window.consider((y0 + dy) * w + x0 + dx) }
                            }
                        }
                        dst[oy * ow + ox] = rectify ? max(window.best, 0) : window.best
                        arg[oy * ow + ox] = Int32(window.index)
                        continue
                    }
                    let yLo = max(y0, 0), yHi = min(y0 + k, g.height)
                    let xLo = max(x0, 0), xHi = min(x0 + k, g.width)
                    var best = -Float.infinity
                    var bestIndex = yLo * w + xLo
                    for y in yLo..<yHi {
                        for x in xLo..<xHi {
                            let v = src[y * w + x]
                            if v > best { best = v; bestIndex = y * w + x }
                        }
                    }
                    dst[oy * ow + ox] = rectify ? max(best, 0) : best
                    arg[oy * ow + ox] = Int32(bestIndex)
                }
            }
        }
    }

    /// Outputs `columns` of one row of 3×3 stride-2 windows whose columns lie inside the plane, over the `rows`
    /// plane rows from `top` (3, or fewer where the padding clips the window): eight at a time (the last group
    /// overlaps: same values again), each window row's three candidates the even and odd lanes of two 16-float
    /// loads, compared in row-major order (first maximum wins; padding, −∞, never does).
    @inline(__always)
    static func interior3x3s2(
        _ src: UnsafePointer<Float>, width w: Int, top: Int, rows: Int, padding: Int, columns: Range<Int>,
        output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>, rectify: Bool
    ) {
        let lanes = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14), zero = SIMD8<Float>()
        var ox = columns.lowerBound
        while ox < columns.upperBound {
            ox = min(ox, columns.upperBound - 8)
            let x0 = 2 * ox - padding
            // a: columns x0 … x0+15, b: x0+1 … x0+16 (never past the window's last column).
            var row = src + top * w + x0
            var a = UnsafeRawPointer(row).loadUnaligned(as: SIMD16<Float>.self)
            var b = UnsafeRawPointer(row + 1).loadUnaligned(as: SIMD16<Float>.self)
            var first = lanes &+ Int32(top * w + x0)
            var best = a.evenHalf, index = first
            @inline(__always) func consider(_ candidate: SIMD8<Float>, _ at: SIMD8<Int32>) {
                let better = candidate .> best
                best.replace(with: candidate, where: better)
                index.replace(with: at, where: better)
            }
            consider(a.oddHalf, first &+ 1)
            consider(b.oddHalf, first &+ 2)
            for _ in 1..<rows {
                row += w
                first &+= Int32(w)
                a = UnsafeRawPointer(row).loadUnaligned(as: SIMD16<Float>.self)
                b = UnsafeRawPointer(row + 1).loadUnaligned(as: SIMD16<Float>.self)
                consider(a.evenHalf, first)
                consider(a.oddHalf, first &+ 1)
                consider(b.oddHalf, first &+ 2)
            }
            if rectify { best.replace(with: zero, where: best .< zero) }
            UnsafeMutableRawPointer(output + ox).storeBytes(of: best, as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(argmax + ox).storeBytes(of: index, as: SIMD8<Int32>.self)
            ox += 8
        }
    }

    /// 2×2 windows, stride 2, no padding: eight outputs at a time from two 16-float row loads, the four
    /// candidates of each window compared in row-major order (first maximum wins, as in the scalar path).
    static func forward2x2(
        _ input: UnsafePointer<Float>, planes: Int, geometry g: ConvGeometry,
        output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>, rectify: Bool
    ) {
        let oh = g.outHeight, ow = g.outWidth, w = g.width
        let lanes = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14), zero = SIMD8<Float>()
        for p in 0..<planes {
            let src = input + p * g.planeSize
            let dst = output + p * oh * ow
            let arg = argmax + p * oh * ow
            for oy in 0..<oh {
                let row0 = src + 2 * oy * w, row1 = row0 + w
                var ox = 0
                while ox < ow {
                    ox = min(ox, ow - 8)   // the last group overlaps the previous one: same values again
                    let top = UnsafeRawPointer(row0 + 2 * ox).loadUnaligned(as: SIMD16<Float>.self)
                    let bottom = UnsafeRawPointer(row1 + 2 * ox).loadUnaligned(as: SIMD16<Float>.self)
                    let first = lanes &+ Int32(2 * oy * w + 2 * ox)
                    var best = top.evenHalf, index = first
                    var candidate = top.oddHalf, better = candidate .> best
                    best.replace(with: candidate, where: better); index.replace(with: first &+ 1, where: better)
                    candidate = bottom.evenHalf; better = candidate .> best
                    best.replace(with: candidate, where: better); index.replace(with: first &+ Int32(w), where: better)
                    candidate = bottom.oddHalf; better = candidate .> best
                    best.replace(with: candidate, where: better); index.replace(with: first &+ Int32(w + 1), where: better)
                    if rectify { best.replace(with: zero, where: best .< zero) }
                    UnsafeMutableRawPointer(dst + oy * ow + ox).storeBytes(of: best, as: SIMD8<Float>.self)
                    UnsafeMutableRawPointer(arg + oy * ow + ox).storeBytes(of: index, as: SIMD8<Int32>.self)
                    ox += 8
                }
            }
        }
    }

    /// Routes each output gradient to the input position that won the forward max (only where `gate`,
    /// the rectified pooled output, is positive, when given).
    public static func backward(
        _ gradOutput: UnsafePointer<Float>, argmax: UnsafePointer<Int32>, planes: Int, geometry g: ConvGeometry,
        gradInput: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>? = nil
    ) {
        let outPlane = g.outPlaneSize
        if g.kernel == 2, g.stride == 2, g.padding == 0, g.height % 2 == 0, g.width % 2 == 0, g.outWidth >= 8 {
            backward2x2(gradOutput, argmax: argmax, planes: planes, geometry: g, gradInput: gradInput, gate: gate)
            return
        }
        gradInput.update(repeating: 0, count: planes * g.planeSize)
        for p in 0..<planes {
            let dst = gradInput + p * g.planeSize
            let src = gradOutput + p * outPlane
            let arg = argmax + p * outPlane
            if let gate {
                let y = gate + p * outPlane
                for i in 0..<outPlane where y[i] > 0 { dst[Int(arg[i])] += src[i] }
            } else {
                for i in 0..<outPlane { dst[Int(arg[i])] += src[i] }
            }
        }
    }

    /// Non-overlapping 2×2 windows that tile the plane: every input position belongs to one window, so
    /// each is written once (its window's gradient or zero) with no zero-fill and scatter beforehand.
    /// Eight windows at a time (rows of at least eight; the last group overlaps: same values again).
    static func backward2x2(
        _ gradOutput: UnsafePointer<Float>, argmax: UnsafePointer<Int32>, planes: Int, geometry g: ConvGeometry,
        gradInput: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>?
    ) {
        let oh = g.outHeight, ow = g.outWidth, w = g.width
        let lanes = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14), zero = SIMD8<Float>()
        for p in 0..<planes {
            let dst = gradInput + p * g.planeSize
            let src = gradOutput + p * oh * ow
            let arg = argmax + p * oh * ow
            let y = gate.map { $0 + p * oh * ow }
            for oy in 0..<oh {
                let top = dst + 2 * oy * w, bottom = top + w
                var ox = 0
                while ox < ow {
                    ox = min(ox, ow - 8)
                    let i = oy * ow + ox
                    var gradient = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self)
                    if let y {
                        gradient.replace(with: zero, where: UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self) .<= zero)
                    }
                    let a = UnsafeRawPointer(arg + i).loadUnaligned(as: SIMD8<Int32>.self)
                    let k = lanes &+ Int32(2 * oy * w + 2 * ox)
                    let w32 = Int32(w)
                    store(interleave(zero.replacing(with: gradient, where: a .== k), zero.replacing(with: gradient, where: a .== k &+ 1)),
                          top + 2 * ox)
                    store(interleave(zero.replacing(with: gradient, where: a .== k &+ w32),
                                     zero.replacing(with: gradient, where: a .== k &+ (w32 + 1))), bottom + 2 * ox)
                    ox += 8
                }
            }
        }
    }

    /// (e0, o0, e1, o1, …): the even and odd columns of a 2×2 pooling row back in place.
    @inline(__always)
    static func interleave(_ even: SIMD8<Float>, _ odd: SIMD8<Float>) -> SIMD16<Float> {
        SIMD16(even[0], odd[0], even[1], odd[1], even[2], odd[2], even[3], odd[3],
               even[4], odd[4], even[5], odd[5], even[6], odd[6], even[7], odd[7])
    }

    @inline(__always)
    static func store(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
    }

    /// A running max with the first-maximum tie rule; `consider` is written as selects so the compiler
    /// can avoid a data-dependent branch (a max over random values mispredicts about half the time).
    struct Window {
        let src: UnsafePointer<Float>
        var best: Float
        var index: Int

        @inline(__always)
        init(_ src: UnsafePointer<Float>, _ first: Int) {
            self.src = src
            best = src[first]
            index = first
        }

        @inline(__always)
        mutating func consider(_ i: Int) {
            let v = src[i]
            let better = v > best
            best = better ? v : best
            index = better ? i : index
        }
    }
}
