/// Geometry of a k×k convolution or pooling window over a batch of planes.
public struct ConvGeometry: Equatable, Sendable {
    public var channels: Int
    public var height: Int
    public var width: Int
    public var kernel: Int
    public var stride: Int
    public var padding: Int

    public init(channels: Int, height: Int, width: Int, kernel: Int, stride: Int = 1, padding: Int = 0) {
        self.channels = channels
        self.height = height
        self.width = width
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
    }

    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    public var planeSize: Int { height * width }
    public var outPlaneSize: Int { outHeight * outWidth }
    /// Rows of the column matrix: one per (channel, ky, kx), in PyTorch's weight order.
    public var patchSize: Int { channels * kernel * kernel }
}

/// Where image n, channel c of a batch starts: activations inside the network are channel-major
/// ([C][N][H][W], so one GEMM covers the batch and writes its output in place), while images
/// arriving from the data layer are [N][C][H][W]. Both are a pair of strides.
public struct PlaneStrides: Equatable, Sendable {
    public var channel: Int
    public var image: Int

    /// [N][C][H][W]
    public static func imageMajor(_ g: ConvGeometry) -> PlaneStrides {
        PlaneStrides(channel: g.planeSize, image: g.channels * g.planeSize)
    }

    /// [C][N][H][W]
    public static func channelMajor(_ g: ConvGeometry, batch: Int) -> PlaneStrides {
        PlaneStrides(channel: batch * g.planeSize, image: g.planeSize)
    }
}

public enum Im2Col {
    /// Unfolds the batch into col[(c,ky,kx)][n][oy][ox] (row length batch·outPlaneSize); padding reads zero.
    public static func forward(
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
    public static func backward(
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

    /// The output columns ox in [lo, hi) for which ox·stride + offset lies in [0, limit).
    @inline(__always)
    static func validRange(offset: Int, stride: Int, count: Int, limit: Int) -> (Int, Int) {
        var lo = 0
        while lo < count && lo * stride + offset < 0 { lo += 1 }
        var hi = count
        while hi > lo && (hi - 1) * stride + offset >= limit { hi -= 1 }
        return (lo, hi)
    }
}
