@testable import DANN

// The bounds-checked im2col/col2im for any stride and padding: the reference that the shipped stride-1 path
// (`Im2Col.pad` + `forwardPadded`, `backwardPadded` + `unpad`) is checked against (FastKernelTests), itself
// checked against the definition and for adjointness (KernelTests). The networks never convolve with stride > 1.
extension Im2Col {
    /// Unfolds the batch into col[(c,ky,kx)][n][oy][ox] (row length batch·outPlaneSize); padding reads zero.
    static func forward(
        _ input: UnsafePointer<Float>, strides s: PlaneStrides, geometry g: ConvGeometry, batch: Int,
        into col: UnsafeMutablePointer<Float>
    ) {
        let oh = g.outHeight, ow = g.outWidth, k = g.kernel
        let rowLength = batch * oh * ow
        for c in 0..<g.channels {
            for ky in 0..<k {
                for kx in 0..<k {
                    var dst = col + ((c * k + ky) * k + kx) * rowLength
                    // Output columns whose input column lies inside the image, computed once per (kx).
                    let (x0, x1) = validRange(offset: kx - g.padding, stride: g.stride, count: ow, limit: g.width)
                    for n in 0..<batch {
                        let plane = input + n * s.image + c * s.channel
                        for oy in 0..<oh {
                            let iy = oy * g.stride + ky - g.padding
                            if iy < 0 || iy >= g.height {
                                dst.update(repeating: 0, count: ow)
                            } else {
                                let src = plane + iy * g.width + kx - g.padding
                                if x0 > 0 { dst.update(repeating: 0, count: x0) }
                                if g.stride == 1 {
                                    (dst + x0).update(from: src + x0, count: x1 - x0)
                                } else {
                                    for ox in x0..<x1 { dst[ox] = src[ox * g.stride] }
                                }
                                if x1 < ow { (dst + x1).update(repeating: 0, count: ow - x1) }
                            }
                            dst += ow
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of `forward`: sums every column entry back into the (zeroed here) input gradient.
    static func backward(
        _ col: UnsafePointer<Float>, strides s: PlaneStrides, geometry g: ConvGeometry, batch: Int,
        into input: UnsafeMutablePointer<Float>
    ) {
        let oh = g.outHeight, ow = g.outWidth, k = g.kernel
        let rowLength = batch * oh * ow
        for n in 0..<batch {
            for c in 0..<g.channels {
                (input + n * s.image + c * s.channel).update(repeating: 0, count: g.planeSize)
            }
        }
        for c in 0..<g.channels {
            for ky in 0..<k {
                for kx in 0..<k {
                    var src = col + ((c * k + ky) * k + kx) * rowLength
                    let (x0, x1) = validRange(offset: kx - g.padding, stride: g.stride, count: ow, limit: g.width)
                    for n in 0..<batch {
                        let plane = input + n * s.image + c * s.channel
                        for oy in 0..<oh {
                            let iy = oy * g.stride + ky - g.padding
                            if iy >= 0 && iy < g.height {
                                let dst = plane + iy * g.width + kx - g.padding
                                if g.stride == 1 {
                                    for ox in x0..<x1 { dst[ox] += src[ox] }
                                } else {
                                    for ox in x0..<x1 { dst[ox * g.stride] += src[ox] }
                                }
                            }
                            src += ow
                        }
                    }
                }
            }
        }
    }
}
