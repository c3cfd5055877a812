/// Max pooling over independent planes (any layout whose H×W planes are contiguous).
/// Padding counts as −∞ and ties go to the first maximum in row-major window order, as in PyTorch.
public enum MaxPoolKernel {
    public static func forward(
        _ input: UnsafePointer<Float>, planes: Int, geometry g: ConvGeometry,
        output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>
    ) {
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
                for ox in 0..<ow {
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
                        dst[oy * ow + ox] = window.best
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
                    dst[oy * ow + ox] = best
                    arg[oy * ow + ox] = Int32(bestIndex)
                }
            }
        }
    }

    /// Routes each output gradient to the input position that won the forward max.
    public static func backward(
        _ gradOutput: UnsafePointer<Float>, argmax: UnsafePointer<Int32>, planes: Int, geometry g: ConvGeometry,
        gradInput: UnsafeMutablePointer<Float>
    ) {
        let outPlane = g.outPlaneSize
        gradInput.update(repeating: 0, count: planes * g.planeSize)
        for p in 0..<planes {
            let dst = gradInput + p * g.planeSize
            let src = gradOutput + p * outPlane
            let arg = argmax + p * outPlane
            for i in 0..<outPlane { dst[Int(arg[i])] += src[i] }
        }
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
