/// Max pooling over independent planes (any layout whose H×W planes are contiguous).
/// Padding counts as −∞ and ties go to the first maximum in row-major window order, as in PyTorch.
public enum MaxPoolKernel {
    public static func forward(
        _ input: UnsafePointer<Float>, planes: Int, geometry g: ConvGeometry,
        output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>
    ) {
        let oh = g.outHeight, ow = g.outWidth
        for p in 0..<planes {
            let src = input + p * g.planeSize
            let dst = output + p * oh * ow
            let arg = argmax + p * oh * ow
            for oy in 0..<oh {
                let y0 = oy * g.stride - g.padding
                let yLo = max(y0, 0), yHi = min(y0 + g.kernel, g.height)
                for ox in 0..<ow {
                    let x0 = ox * g.stride - g.padding
                    let xLo = max(x0, 0), xHi = min(x0 + g.kernel, g.width)
                    var best = -Float.infinity
                    var bestIndex = yLo * g.width + xLo
                    for y in yLo..<yHi {
                        for x in xLo..<xHi {
                            let v = src[y * g.width + x]
                            if v > best { best = v; bestIndex = y * g.width + x }
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
}
